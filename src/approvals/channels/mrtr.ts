import type { ApprovalRecord } from '../../protocol/approval-record.ts';
import type { InputRequiredResult } from '../../protocol/call.ts';
import { APPROVAL_INPUT_KEY, formElicitation, readAnswer, urlElicitation, type ElicitationAnswer } from './elicitation.ts';
import type { ApprovalRequestState, RequestStateCodec } from './request-state.ts';

/** How long a requestState outlives its approval: a retry just after expiry hears "expired", not "malformed". */
const STATE_GRACE_MS = 5 * 60_000;

/**
 * The first answer to a 2026-07-28 client: `input_required`, asking for a confirm form or for the approval
 * page to be opened, with a signed `requestState` naming the approval and the call it is bound to.
 */
export function askInputRequired(codec: RequestStateCodec, approval: ApprovalRecord, ask: 'form' | 'url', url: string | undefined): InputRequiredResult {
  const request = ask === 'form' ? formElicitation(approval) : urlElicitation(approval, url!);
  return {
    resultType: 'input_required',
    inputRequests: { [APPROVAL_INPUT_KEY]: { method: 'elicitation/create', params: request } },
    requestState: mintState(codec, approval, ask),
    _meta: { 'gatehouse/approval': { id: approval.id, state: approval.state, expiresAt: approval.expiresAt, ...(url ? { url } : {}) } },
  };
}

/** Still pending after the retry was held: `input_required` again, with the state only (nothing new to ask). */
export function stillPending(codec: RequestStateCodec, approval: ApprovalRecord, ask: 'form' | 'url'): InputRequiredResult {
  return { resultType: 'input_required', requestState: mintState(codec, approval, ask), _meta: { 'gatehouse/approval': { id: approval.id, state: approval.state, expiresAt: approval.expiresAt } } };
}

/** The client's answer to our question in a retry's `inputResponses`, if it sent one. */
export function answerIn(inputResponses: Record<string, unknown> | undefined, ask: 'form' | 'url'): ElicitationAnswer {
  const response = inputResponses?.[APPROVAL_INPUT_KEY];
  return response === undefined ? 'unanswered' : readAnswer(response, ask);
}

function mintState(codec: RequestStateCodec, approval: ApprovalRecord, ask: 'form' | 'url'): string {
  const state: ApprovalRequestState = { approvalId: approval.id, binding: approval.bindingKey, ask, expiresAt: approval.expiresAt + STATE_GRACE_MS };
  return codec.mint(state);
}
