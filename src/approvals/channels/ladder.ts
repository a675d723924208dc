import type { ClientFacts } from '../../protocol/call.ts';

/**
 * How a pending approval reaches the human, chosen per call from what the client negotiated (ARCHITECTURE §5),
 * and recorded as `channel` on the job's `job.approval_required` event.
 * - `mrtr_form` / `mrtr_url`: a 2026-07-28 client gets `input_required` asking for a confirm form (the caller may
 *   approve their own call and the client fills forms) or a link to the approval page (the client opens URLs).
 * - `url_elicitation`: a 2025 client that declared `elicitation.url` is sent the page's link; the call is held.
 * - `form_elicitation`: a 2025 client with form elicitation only, where the caller may approve their own call.
 * - `hold`: a client that sent a progress token is held, with progress every 10 s, within its hold budget.
 * - `task`: the call runs as a task (2025-11-25 experimental tasks): the task waits, not the request.
 * - `pending`: everything else, and a hold that ran out: the pending result, resumed by an identical retry.
 */
export type ApprovalChannel = 'mrtr_form' | 'mrtr_url' | 'url_elicitation' | 'form_elicitation' | 'hold' | 'task' | 'pending';

export interface LadderFacts {
  client: ClientFacts;
  /** The client can be sent requests tied to this call (a 2025 session over stdio or HTTP). */
  canAsk: boolean;
  progressToken: boolean;
  /** The call runs as a task. */
  task: boolean;
  /** The caller may approve this approval themselves (selfApprove, and an approver list that admits them). */
  callerMayApprove: boolean;
  /** There is an approval page to link to. */
  hasPage: boolean;
  /** This client's hold budget (ms). */
  holdBudgetMs: number;
}

export function chooseChannel(facts: LadderFacts): ApprovalChannel {
  if (facts.task) return 'task';
  const modes = elicitationModes(facts.client.capabilities);
  if (facts.client.era === 'modern') {
    if (facts.callerMayApprove && modes.form) return 'mrtr_form';
    if (modes.url && facts.hasPage) return 'mrtr_url';
  } else if (facts.canAsk) {
    if (modes.url && facts.hasPage && facts.holdBudgetMs > 0) return 'url_elicitation';
    if (modes.form && facts.callerMayApprove) return 'form_elicitation';
  }
  if (facts.progressToken && facts.holdBudgetMs > 0) return 'hold';
  return 'pending';
}

/**
 * The elicitation modes a client declared, read as the SDK reads them: `elicitation: {}` (no mode named) means
 * form only, as in the 2025-06-18 revision that had no modes.
 */
export function elicitationModes(capabilities: Record<string, unknown>): { form: boolean; url: boolean } {
  const elicitation = capabilities.elicitation as Record<string, unknown> | undefined;
  if (!elicitation || typeof elicitation !== 'object') return { form: false, url: false };
  const url = elicitation.url !== undefined;
  return { form: elicitation.form !== undefined || !url, url };
}

/** The hold budget for a client: `approvals.holdBudgetByClient[clientInfo.name]`, else `approvals.holdBudget`. */
export function holdBudgetFor(client: ClientFacts | undefined, holdBudgetMs: number, byClient: Readonly<Record<string, number>> = {}): number {
  const name = client?.name;
  return name !== undefined && Object.hasOwn(byClient, name) ? byClient[name] : holdBudgetMs;
}
