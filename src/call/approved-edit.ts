import type { Kernel } from '../kernel/kernel.ts';
import type { Decision } from '../kernel/decision.ts';
import type { JobRequest } from '../protocol/cap.ts';
import type { ErrorCode } from '../errors.ts';
import type { ApprovalEdit } from '../protocol/approval-record.ts';
import type { CallToolResult } from '../protocol/mcp.ts';
import { verdictOf } from '../kernel/verdict.ts';
import { editedArguments, editNote } from '../approvals/edit.ts';
import { decisionInputOf } from './job-request.ts';
import type { CatalogEntry } from './catalog.ts';

/** What an approved edit means for the call: run it with the edited arguments under a new decision, or refuse. */
export type EditedCall = { args: Record<string, unknown>; decision: Decision } | { code: ErrorCode; message: string };

/**
 * An approver changed the arguments: the edited ones must pass the tool's input schema and be decided again by
 * the kernel, whose deny (or argument constraint) wins over the human's yes. The approval is used up either way.
 */
export function editedCall(kernel: Pick<Kernel, 'decide'>, entry: CatalogEntry, job: JobRequest, original: Record<string, unknown>, edit: ApprovalEdit, now: number): EditedCall {
  const args = editedArguments(original, edit);
  const invalid = entry.check(args);
  if (invalid) return { code: 'GH_ERR_INVALID_ARGUMENTS', message: `The approver (${edit.by}) changed the arguments, and the changed ones do not fit the tool: ${invalid}. The call did not run.` };
  const input = decisionInputOf(job, entry, args, now);
  const decision = kernel.decide(input);
  const verdict = verdictOf(input, decision);
  if (verdict.effect === 'deny') {
    return { code: verdict.code ?? 'GH_ERR_POLICY_DENIED', message: `The approver (${edit.by}) changed the arguments, and the policy refuses the changed call (${decision.reason}). The call did not run.` };
  }
  return { args, decision };
}

/** The result with the note that tells the model its arguments were changed, first. */
export function withEditNote(result: CallToolResult, original: Record<string, unknown>, edit: ApprovalEdit): CallToolResult {
  return { ...result, content: [{ type: 'text', text: editNote(original, edit) }, ...(result.content ?? [])] };
}
