/** Edit, then approve: what an approver may send as the arguments to run instead, and what the model is told. */
import { GatewayError } from '../errors.ts';
import { digestOf } from '../protocol/digest.ts';
import type { ApprovalEdit, ApprovalRecord } from '../protocol/approval-record.ts';

/** Edited arguments are kept in the approval record until its call runs: bounded like the redacted arguments. */
export const MAX_EDITED_ARGS_BYTES = 1024 * 1024;
const SHOWN_CHARS = 120;

/**
 * Checks what an approver sent as the call's new arguments. The tool's schema and the policy are checked when the
 * call runs (where the tool is known; the CLI may not know it), so an edit cannot run what either refuses.
 */
export function checkEdit(args: unknown, approval: ApprovalRecord, actor: string, now: number): ApprovalEdit {
  const invalid = (reason: string) => new GatewayError('GH_ERR_APPROVAL_EDIT_INVALID', `edit refused: ${reason}`, { data: { approvalId: approval.id } });
  if (args === null || typeof args !== 'object' || Array.isArray(args)) throw invalid('the arguments must be a JSON object');
  if (Buffer.byteLength(JSON.stringify(args)) > MAX_EDITED_ARGS_BYTES) throw invalid(`the arguments must be at most ${MAX_EDITED_ARGS_BYTES} bytes of JSON`);
  if (approval.quorum > 1) throw invalid(`the approval needs ${approval.quorum} approvers; the others would approve arguments they did not see`);
  const argsDigest = digestOf(args);
  if (argsDigest === approval.argsDigest) throw invalid('the arguments are the ones the call came with; approve it as it is');
  return { args: args as Record<string, unknown>, argsDigest, by: actor, at: now };
}

/** What the model reads before the result: who changed which arguments, from what to what. */
export function editNote(original: Record<string, unknown>, edit: ApprovalEdit): string {
  const keys = [...new Set([...Object.keys(original), ...Object.keys(edit.args)])];
  const changes = keys
    .filter((key) => JSON.stringify(original[key]) !== JSON.stringify(edit.args[key]))
    .map((key) => `${key}: ${shown(original[key])} → ${shown(edit.args[key])}`);
  return `Gatehouse: ${edit.by} changed the arguments before approving, and the call ran with the changed ones (${changes.join('; ')}). Do not retry with the original arguments expecting them to run.`;
}

function shown(value: unknown): string {
  if (value === undefined) return '(absent)';
  const text = JSON.stringify(value);
  return text.length > SHOWN_CHARS ? `${text.slice(0, SHOWN_CHARS)}…` : text;
}
