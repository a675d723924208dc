import type { ApprovalRecord } from '../../protocol/approval-record.ts';
import type { ErrorCode } from '../../errors.ts';
import type { CallToolResult } from '../../protocol/mcp.ts';
import { errorResult } from '../../protocol/tool-results.ts';
import { STATUS_TOOL, WAIT_TOOL } from './builtin-tools.ts';

/**
 * The answers a gated call can end with, as the model reads them. Each names the approval; the pending one also
 * says where a human approves it and how the model resumes: retry the very same call, which then runs once.
 */

/** Where and how a human approves: the page when there is one, and the CLI line. */
export interface ApprovalLinks {
  /** `<publicUrl or the HTTP address>/approvals/<id>`, when Gatehouse serves HTTP. */
  url(id: string): string | undefined;
  /** One sentence: the page and the CLI command. */
  hint(id: string): string;
}

const approvalMeta = (approval: ApprovalRecord, links?: ApprovalLinks): Record<string, unknown> => {
  const url = links?.url(approval.id);
  return { 'gatehouse/approval': { id: approval.id, state: approval.state, expiresAt: approval.expiresAt, ...(url ? { url } : {}) } };
};

export function pendingResult(approval: ApprovalRecord, links: ApprovalLinks): CallToolResult {
  const text = [
    `This call needs a human's approval before it runs, and it has NOT run yet. Reason: ${approval.reason}.`,
    `Approval id: ${approval.id}, to be approved by ${approversText(approval)}. ${links.hint(approval.id)}`,
    `Once it is approved, retry this exact call (same tool, same arguments): it will then run once. ${WAIT_TOOL}({ "approval_id": "${approval.id}" }) waits for the decision; ${STATUS_TOOL} tells where it stands.`,
    `The approval expires at ${new Date(approval.expiresAt).toISOString()}.`,
  ].join('\n');
  return errorResult('GH_ERR_APPROVAL_PENDING', text, approvalMeta(approval, links));
}

export function deniedResult(approval: ApprovalRecord): CallToolResult {
  const last = approval.history[approval.history.length - 1];
  const who = last?.actor === approval.principal ? 'the caller (withdrawn)' : (last?.actor ?? 'unknown');
  return errorResult('GH_ERR_APPROVAL_DENIED', `A human denied this call (approval ${approval.id}, by ${who})${last?.reason ? `: ${last.reason}` : ''}. Do not retry it unchanged.`, approvalMeta(approval));
}

export function expiredResult(approval: ApprovalRecord): CallToolResult {
  return errorResult('GH_ERR_APPROVAL_EXPIRED', `The approval ${approval.id} for this call expired before it was used. Calling again will ask for a new approval.`, approvalMeta(approval));
}

export function cancelledResult(approval: ApprovalRecord, why: string): CallToolResult {
  return errorResult('GH_ERR_CANCELLED', `The call was cancelled while waiting for approval ${approval.id} (${why}); the approval was withdrawn. Calling again asks for a new one.`, approvalMeta(approval));
}

/** The approval cannot serve this call (other arguments: GH_ERR_APPROVAL_MISMATCH; a changed tool: GH_ERR_APPROVAL_STALE). */
export function refusedResult(approval: ApprovalRecord, code: ErrorCode, reason: string): CallToolResult {
  const next = code === 'GH_ERR_APPROVAL_STALE' ? 'Calling again will ask for a new approval.' : 'It ran nothing. Call the tool with the approved arguments, or without the requestState to ask for a new approval.';
  return errorResult(code, `The approval ${approval.id} was not used for this call: ${reason}. ${next}`, approvalMeta(approval));
}

/** A human's action refused (an approver list that leaves the caller out, say): the approval stays pending. */
export function actionRefusedResult(approval: ApprovalRecord, code: ErrorCode, reason: string, links: ApprovalLinks): CallToolResult {
  return errorResult(code, `Your answer could not settle approval ${approval.id}: ${reason}. It stays pending for ${approversText(approval)}. ${links.hint(approval.id)} Then retry this exact call.`, approvalMeta(approval, links));
}

/** `onApprove: execute`: the gateway is running the call now; the result waits for one identical retry. */
export function runningResult(approval: ApprovalRecord): CallToolResult {
  return errorResult(
    'GH_ERR_APPROVAL_PENDING',
    `Approval ${approval.id} was granted and Gatehouse is running this call now. Retry this exact call shortly to get its result (it will not run again).`,
    approvalMeta(approval),
  );
}

/** Who may approve, for a human or a model to read. */
export function approversText(approval: ApprovalRecord): string {
  const quorum = approval.quorum > 1 ? `${approval.quorum} distinct approvers among ` : '';
  if (approval.approvers === undefined) return approval.quorum > 1 ? `${approval.quorum} distinct approvers` : 'an approver';
  if (approval.approvers.length === 0) return 'nobody (the matching rules name no approver in common)';
  return `${quorum}${approval.approvers.join(', ')}`;
}
