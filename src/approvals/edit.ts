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
export function checkEdit(changes: unknown, approval: ApprovalRecord, actor: string, now: number): ApprovalEdit {
  const invalid = (reason: string) => new GatewayError('GH_ERR_APPROVAL_EDIT_INVALID', `edit refused: ${reason}`, { data: { approvalId: approval.id } });
  if (changes === null || typeof changes !== 'object' || Array.isArray(changes)) throw invalid('the changes must be a JSON object of the arguments to set');
  if (Object.keys(changes).length === 0) throw invalid('no argument is changed; approve the call as it is');
  if (Buffer.byteLength(JSON.stringify(changes)) > MAX_EDITED_ARGS_BYTES) throw invalid(`the changes must be at most ${MAX_EDITED_ARGS_BYTES} bytes of JSON`);
  if (approval.quorum > 1) throw invalid(`the approval needs ${approval.quorum} approvers; the others would approve arguments they did not see`);
  return { changes: changes as Record<string, unknown>, changesDigest: digestOf(changes), by: actor, at: now };
}

/** The arguments the approved call runs with: the call's, each changed key set to the approver's value. */
export function editedArguments(original: Record<string, unknown>, edit: ApprovalEdit): Record<string, unknown> {
  return { ...original, ...edit.changes };
}

/** What the model reads before the result: who changed which arguments, from what to what. */
export function editNote(original: Record<string, unknown>, edit: ApprovalEdit): string {
  const changes = Object.keys(edit.changes)
    .filter((key) => JSON.stringify(original[key]) !== JSON.stringify(edit.changes[key]))
    .map((key) => `${key}: ${shown(original[key])} → ${shown(edit.changes[key])}`);
  return `Gatehouse: ${edit.by} changed the arguments before approving, and the call ran with the changed ones (${changes.join('; ') || 'to the values they had'}). Do not retry with the original arguments expecting them to run.`;
}

function shown(value: unknown): string {
  if (value === undefined) return '(absent)';
  const text = JSON.stringify(value);
  return text.length > SHOWN_CHARS ? `${text.slice(0, SHOWN_CHARS)}…` : text;
}
