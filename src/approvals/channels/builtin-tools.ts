import type { ApprovalRecord } from '../../protocol/approval-record.ts';
import type { ApprovalService } from '../service.ts';
import { textResult, type CallToolResult, type ToolDefinition } from '../../protocol/mcp.ts';
import type { Caller, ReplyChannel } from '../../protocol/call.ts';
import { errorResult } from '../../protocol/tool-results.ts';
import { holdForApproval } from './hold.ts';
import { approversText, type ApprovalLinks } from './pending.ts';

export const STATUS_TOOL = 'gatehouse_approval_status';
export const WAIT_TOOL = 'gatehouse_approval_wait';
/** Names no upstream tool may take: the catalog leaves such a tool out. */
export const BUILTIN_TOOL_NAMES: ReadonlySet<string> = new Set([STATUS_TOOL, WAIT_TOOL]);

/** The longest a model may wait in one call: under the common 60 s client timeout. */
export const MAX_WAIT_SECONDS = 45;

const approvalId = { type: 'string', description: 'The approval id from a GH_ERR_APPROVAL_PENDING result (apr_…).' };

export const BUILTIN_TOOLS: readonly ToolDefinition[] = [
  {
    name: STATUS_TOOL,
    title: 'Approval status',
    description: 'Where a Gatehouse approval stands (pending, approved, denied, expired …), when it expires, and what to do next. Only the caller who asked for it may read it.',
    inputSchema: { type: 'object', properties: { approval_id: approvalId }, required: ['approval_id'], additionalProperties: false },
    annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  },
  {
    name: WAIT_TOOL,
    title: 'Wait for an approval',
    description: `Waits until a Gatehouse approval is decided or the given time passes (at most ${MAX_WAIT_SECONDS} s), then reports like ${STATUS_TOOL}. Retry the original call once it is approved.`,
    inputSchema: {
      type: 'object',
      properties: { approval_id: approvalId, seconds: { type: 'number', minimum: 1, maximum: MAX_WAIT_SECONDS, description: `How long to wait, in seconds (default and most: ${MAX_WAIT_SECONDS}).` } },
      required: ['approval_id'],
      additionalProperties: false,
    },
    annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  },
];

export interface BuiltinToolsOptions {
  links: ApprovalLinks;
  /** How often a waiting call sends progress (ms). */
  progressEveryMs: number;
}

/**
 * The tools Gatehouse itself serves to every client, beside the upstreams' tools: a model that got a pending
 * result can see where the approval stands and wait for it. They read approvals and change nothing, so the kernel
 * does not govern them; an approval is shown only to the principal and tenant that asked for it.
 */
export class BuiltinTools {
  constructor(
    private readonly approvals: ApprovalService,
    private readonly options: BuiltinToolsOptions,
  ) {}

  has(name: string): boolean {
    return BUILTIN_TOOL_NAMES.has(name);
  }

  async call(name: string, args: Record<string, unknown>, caller: Caller, reply: ReplyChannel): Promise<CallToolResult> {
    const id = args.approval_id;
    if (typeof id !== 'string' || id === '') return errorResult('GH_ERR_INVALID_ARGUMENTS', `${name} needs a string "approval_id"`);
    const found = await this.approvals.get(id);
    // Another caller's approval is reported as missing: its existence is not theirs to learn.
    if (!found || found.principal !== caller.principal || found.tenant !== caller.tenant) return errorResult('GH_ERR_APPROVAL_NOT_FOUND', `No approval ${id} of yours.`);
    if (name === STATUS_TOOL) return this.report(found);
    const seconds = args.seconds === undefined ? MAX_WAIT_SECONDS : args.seconds;
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_WAIT_SECONDS) {
      return errorResult('GH_ERR_INVALID_ARGUMENTS', `"seconds" must be a number from 1 to ${MAX_WAIT_SECONDS}`);
    }
    const url = this.options.links.url(found.id);
    const settled = await holdForApproval(this.approvals, found.id, reply, {
      budgetMs: Math.round(seconds * 1000),
      everyMs: this.options.progressEveryMs,
      message: `Waiting for approval ${found.id} by ${approversText(found)}${url ? `; approve at ${url}` : ''}`,
    });
    return this.report(settled);
  }

  private report(approval: ApprovalRecord): CallToolResult {
    const url = this.options.links.url(approval.id);
    const text = `Approval ${approval.id} for ${approval.tool} is ${approval.state}${approval.state === 'pending' || approval.state === 'approved' ? ` (expires ${new Date(approval.expiresAt).toISOString()})` : ''}. ${nextStep(approval, this.options.links)}`;
    return {
      ...textResult(text),
      structuredContent: {
        approvalId: approval.id,
        state: approval.state,
        tool: approval.tool,
        expiresAt: new Date(approval.expiresAt).toISOString(),
        ...(url ? { url } : {}),
        next: nextStep(approval, this.options.links),
      },
    };
  }
}

function nextStep(approval: ApprovalRecord, links: ApprovalLinks): string {
  const last = approval.history[approval.history.length - 1];
  switch (approval.state) {
    case 'pending':
      return `Waiting for ${approversText(approval)}${approval.votes.length ? ` (${approval.votes.length} of ${approval.quorum} so far)` : ''}. ${links.hint(approval.id)} Then retry the original call, unchanged; ${WAIT_TOOL} waits for the decision.`;
    case 'approved':
      return approval.onApprove === 'execute'
        ? 'Approved: Gatehouse runs the call itself; retry the original call, unchanged, to get its result.'
        : 'Approved: retry the original call now, with exactly the same arguments. It runs once.';
    case 'consumed':
      if (approval.execution && approval.execution.takenBy === undefined) return 'Gatehouse ran the call on approval; retry the original call, unchanged, to get its result (once).';
      return 'Used: the approved call has run. Calling it again asks for a new approval.';
    case 'denied':
      return `Denied by ${last?.actor ?? 'an approver'}${last?.reason ? `: ${last.reason}` : ''}. Do not retry the call unchanged.`;
    case 'expired':
      return 'Expired before it was used (expiry means deny). Calling again asks for a new approval.';
    case 'cancelled':
      return `Withdrawn${last?.reason ? ` (${last.reason})` : ''}. Calling again asks for a new approval.`;
  }
}
