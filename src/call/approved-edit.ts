import type { Kernel } from '../kernel/kernel.ts';
import type { Decision, SessionView } from '../kernel/decision.ts';
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

/** What the edited call is decided with besides its arguments: the session's facts, and the rules the approval answered. */
export interface EditContext {
  session?: SessionView;
  /** The approval's rule ids: an edited call that another rule now holds for approval was not approved. */
  approvedRules: readonly string[];
}

/**
 * An approver changed the arguments: the edited ones must pass the tool's input schema and be decided again by
 * the kernel, on the same session facts as the call, whose deny (or argument constraint) wins over the human's yes,
 * and whose demand for another rule's approval is not met by this one. The approval is used up either way.
 */
export function editedCall(kernel: Pick<Kernel, 'decide'>, entry: CatalogEntry, job: JobRequest, original: Record<string, unknown>, edit: ApprovalEdit, now: number, context: EditContext): EditedCall {
  const args = editedArguments(original, edit);
  const invalid = entry.check(args);
  if (invalid) return { code: 'GH_ERR_INVALID_ARGUMENTS', message: `The approver (${edit.by}) changed the arguments, and the changed ones do not fit the tool: ${invalid}. The call did not run.` };
  const input = decisionInputOf(job, entry, args, now);
  if (context.session) input.session = context.session;
  const decision = kernel.decide(input);
  const verdict = verdictOf(input, decision);
  if (verdict.effect === 'deny') {
    return { code: verdict.code ?? 'GH_ERR_POLICY_DENIED', message: `The approver (${edit.by}) changed the arguments, and the policy refuses the changed call (${decision.reason}). The call did not run.` };
  }
  const unapproved = (decision.approvals ?? []).map((a) => a.ruleId).filter((id) => !context.approvedRules.includes(id));
  if (verdict.effect === 'require_approval' && unapproved.length > 0) {
    return { code: 'GH_ERR_APPROVAL_MISMATCH', message: `The approver (${edit.by}) changed the arguments, and the changed call needs an approval under ${unapproved.join(', ')}, which this one was not asked for. The call did not run; call again to ask.` };
  }
  return { args, decision };
}

/** The result with the note that tells the model its arguments were changed, first. */
export function withEditNote(result: CallToolResult, original: Record<string, unknown>, edit: ApprovalEdit): CallToolResult {
  return { ...result, content: [{ type: 'text', text: editNote(original, edit) }, ...(result.content ?? [])] };
}
