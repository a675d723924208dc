/**
 * The approval page's two further ways to approve: "this and matching calls" (a grant) and "with these arguments
 * changed" (an edit). Forms of their own, posted to the approval like Approve and Deny, with the same CSRF token.
 */
import type { ApprovalRecord } from '../protocol/approval-record.ts';
import { prefilledCondition } from '../approvals/grant.ts';
import { MASK } from '../approvals/preview.ts';
import { GatewayError } from '../errors.ts';
import { html, type SafeHtml } from './html.ts';
import type { Approver } from './access.ts';
import type { ApproverActions } from './actions.ts';

const DURATIONS: [string, number][] = [['15 minutes', 15 * 60_000], ['30 minutes', 30 * 60_000], ['1 hour', 3_600_000], ['2 hours', 7_200_000], ['4 hours', 14_400_000], ['8 hours', 28_800_000]];

/** Shown under Approve and Deny while the approval is pending and one approver can settle it. */
export function grantAndEditForms(record: ApprovalRecord, csrfToken: string): SafeHtml | undefined {
  if (record.quorum > 1) return undefined;
  // A value shown masked is left out, so that posting the form as it is can never set it to the mask.
  const changes = JSON.stringify(Object.fromEntries(Object.entries(record.redactedArgs ?? {}).filter(([, v]) => !JSON.stringify(v).includes(MASK))), null, 2);
  return html`<details class="card"><summary>Approve this and matching calls</summary><form method="post"><input type="hidden" name="csrf" value="${csrfToken}">
<label for="condition">Later calls of ${record.tool} run without asking while this CEL condition holds (pre-filled: the same arguments; edit to widen)</label>
<textarea id="condition" name="condition" maxlength="4096">${prefilledCondition(record.redactedArgs)}</textarea>
<label for="scope">For</label><select id="scope" name="scope">${record.sessionId ? html`<option value="session">this session</option>` : undefined}<option value="principal">every session of ${record.principal}</option></select>
<label for="duration">During</label><select id="duration" name="duration">${DURATIONS.map(([label, ms]) => html`<option value="${String(ms)}"${ms === 30 * 60_000 ? html` selected` : undefined}>${label}</option>`)}</select>
<div class="actions"><button class="approve" name="decision" value="grant">Approve and grant</button></div></form></details>
<details class="card"><summary>Change the arguments, then approve</summary><form method="post"><input type="hidden" name="csrf" value="${csrfToken}">
<label for="changes">The arguments to set, as JSON (keep only those you change: the others run as the call sent them, secrets included)</label>
<textarea id="changes" name="changes" rows="8">${changes}</textarea>
<div class="actions"><button class="approve" name="decision" value="edit">Approve with these changes</button></div></form></details>`;
}

/** Runs a posted grant or edit; false when the form is neither (Approve and Deny are the page's own). */
export async function decideExtra(actions: ApproverActions, approver: Approver, id: string, form: Record<string, unknown>): Promise<boolean> {
  if (form.decision === 'grant') {
    const grant = { condition: form.condition, scope: form.scope, durationMs: Number(form.duration) };
    await actions.approveWithGrant(approver, id, grant, form.reason);
    return true;
  }
  if (form.decision === 'edit') {
    let changes: unknown;
    try {
      changes = JSON.parse(String(form.changes ?? ''));
    } catch (err) {
      throw new GatewayError('GH_ERR_APPROVAL_EDIT_INVALID', `The changes are not JSON: ${(err as Error).message}`);
    }
    await actions.approveWithEdit(approver, id, changes, form.reason);
    return true;
  }
  return false;
}
