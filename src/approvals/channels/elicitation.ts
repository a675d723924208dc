import type { ApprovalRecord } from '../../protocol/approval-record.ts';
import type { ApprovalService } from '../service.ts';
import { isGatewayError, type GatewayError } from '../../errors.ts';
import { ulid } from '../../protocol/ulid.ts';
import type { ReplyChannel } from '../../protocol/call.ts';
import { holdForApproval, UNTIL_EXPIRY_MS } from './hold.ts';

/** The key of the approval question in an `input_required` result's `inputRequests`. */
export const APPROVAL_INPUT_KEY = 'gatehouse_approval';

/** What the client answered: a form confirmed, a link accepted (the human went to the page), or no. */
export type ElicitationAnswer = 'confirm' | 'accept' | 'decline' | 'cancel' | 'unanswered';

/** The confirm form: who asks for which tool, the redacted argument preview, the rules and their reason. */
export function formElicitation(approval: ApprovalRecord): Record<string, unknown> {
  return {
    mode: 'form',
    message: describe(approval, 'Approve this call?'),
    requestedSchema: {
      type: 'object',
      properties: {
        confirm: { type: 'boolean', title: 'Approve this call', description: `Run ${approval.tool} with the arguments shown, once.` },
      },
      required: ['confirm'],
    },
  };
}

/** A link to the approval page, for an approver to decide there. */
export function urlElicitation(approval: ApprovalRecord, url: string): Record<string, unknown> {
  return { mode: 'url', message: describe(approval, 'Open the approval page to approve or deny this call.'), url };
}

function describe(approval: ApprovalRecord, ask: string): string {
  return [
    `Gatehouse: ${approval.principal} asks to call ${approval.tool}. ${ask}`,
    `Arguments: ${approval.argsPreview}`,
    `Rules: ${approval.ruleIds.join(', ') || '(the policy default)'}. Reason: ${approval.reason}`,
    `Expires: ${new Date(approval.expiresAt).toISOString()} (approval ${approval.id}).`,
  ].join('\n');
}

/** Reads an elicitation result (`{ action, content }`) as an answer to the question asked. */
export function readAnswer(result: unknown, asked: 'form' | 'url'): ElicitationAnswer {
  const { action, content } = (result ?? {}) as { action?: unknown; content?: { confirm?: unknown } };
  if (action === 'decline') return 'decline';
  if (action === 'cancel') return 'cancel';
  if (action !== 'accept') return 'unanswered';
  if (asked === 'url') return 'accept';
  return content?.confirm === true ? 'confirm' : 'decline';
}

/**
 * Acts on the client's answer as the caller: a confirmed form approves (the service checks that the caller may),
 * a decline denies (the requester may always withdraw), a cancel withdraws. Returns the refusal when the caller
 * may not approve; the approval then stays pending for the others.
 */
export async function applyAnswer(approvals: ApprovalService, approval: ApprovalRecord, caller: string, answer: ElicitationAnswer, clientName = 'the client'): Promise<GatewayError | undefined> {
  try {
    if (answer === 'confirm') await approvals.approve(approval.id, caller, `confirmed in ${clientName}`);
    else if (answer === 'decline') await approvals.deny(approval.id, caller, `declined in ${clientName}`);
    else if (answer === 'cancel') await approvals.cancel(approval.id, caller, `dismissed in ${clientName}`);
    return undefined;
  } catch (err) {
    // Settled meanwhile (approved on the page, expired): the caller reads the approval as it is.
    if (isGatewayError(err, 'GH_ERR_APPROVAL_INVALID_STATE') || isGatewayError(err, 'GH_ERR_APPROVAL_EXPIRED')) return undefined;
    if (isGatewayError(err)) return err;
    throw err;
  }
}

export interface LegacyElicitation {
  approvals: ApprovalService;
  approval: ApprovalRecord;
  reply: ReplyChannel;
  caller: string;
  clientName: string | undefined;
  budgetMs: number;
  everyMs: number;
  /** The progress message while held. */
  message: string;
}

/**
 * 2025 client with `elicitation.url`: sends the approval page's link with an `elicitationId`, holds the call
 * until the approval settles (within the hold budget), then sends `notifications/elicitation/complete`. A
 * decline or cancel of the link withdraws the approval.
 */
export async function askUrl(ctx: LegacyElicitation, url: string): Promise<ApprovalRecord> {
  const { approvals, approval, reply } = ctx;
  const elicitationId = `${approval.id}.${ulid()}`;
  const stop = new AbortController();
  const held = holdForApproval(approvals, approval.id, reply, { budgetMs: ctx.budgetMs, everyMs: ctx.everyMs, message: ctx.message, signal: stop.signal });
  void ask(reply, { ...urlElicitation(approval, url), elicitationId }, stop.signal, 'url').then(async (answer) => {
    if (answer === 'decline' || answer === 'cancel') await applyAnswer(approvals, approval, ctx.caller, answer, ctx.clientName).catch(() => undefined);
  });
  const record = await held;
  stop.abort();
  const complete = { elicitationId };
  if (record.state !== 'pending') {
    if (!reply.signal.aborted) reply.notify('notifications/elicitation/complete', complete);
  } else if (reply.later && !reply.signal.aborted) {
    // The hold ran out first: the client still shows the link, so it hears of the decision on its session stream.
    const later = reply.later;
    void approvals.waitForSettled(approval.id, UNTIL_EXPIRY_MS).then((settled) => settled.state !== 'pending' && later('notifications/elicitation/complete', complete), () => undefined);
  }
  return record;
}

export type FormOutcome = { record: ApprovalRecord; refused?: GatewayError };

/**
 * 2025 client with form elicitation, for an approval the caller may grant: asks for a confirm and acts on the
 * answer. An approver deciding elsewhere meanwhile settles it too; the question is then withdrawn. A client
 * that does not answer leaves the call held within the hold budget.
 */
export async function askForm(ctx: LegacyElicitation): Promise<FormOutcome> {
  const { approvals, approval, reply } = ctx;
  const stop = new AbortController();
  const signal = AbortSignal.any([reply.signal, stop.signal]);
  // Bounded by the approval's expiry only: a human is looking at the question.
  const elsewhere = approvals.waitForSettled(approval.id, UNTIL_EXPIRY_MS, { signal }).then((record) => ({ record }));
  const answered = ask(reply, formElicitation(approval), signal, 'form').then((answer) => ({ answer }));
  const first = await Promise.race([answered, elsewhere]);
  stop.abort();
  if ('record' in first) return { record: (await approvals.get(approval.id)) ?? first.record };
  const refused = await applyAnswer(approvals, approval, ctx.caller, first.answer, ctx.clientName);
  const record = (await approvals.get(approval.id)) ?? approval;
  // A vote toward a quorum, a refused answer or no answer: the others may still decide within the hold budget.
  if (record.state === 'pending' && !refused && !reply.signal.aborted) {
    return { record: await holdForApproval(approvals, approval.id, reply, { budgetMs: ctx.budgetMs, everyMs: ctx.everyMs, message: ctx.message }) };
  }
  return { record, ...(refused ? { refused } : {}) };
}

async function ask(reply: ReplyChannel, params: Record<string, unknown>, signal: AbortSignal, asked: 'form' | 'url'): Promise<ElicitationAnswer> {
  if (!reply.ask) return 'unanswered';
  try {
    return readAnswer(await reply.ask('elicitation/create', params, signal), asked);
  } catch {
    return 'unanswered';
  }
}
