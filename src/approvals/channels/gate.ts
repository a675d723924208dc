import type { Store } from '../../ports.ts';
import type { Logger } from '../../log.ts';
import { callLogFields } from '../../scheduler/job-log-fields.ts';
import type { Decision } from '../../kernel/decision.ts';
import type { JobSteps } from '../../scheduler/job-steps.ts';
import { bindingKeyOf, type ApprovalBinding, type ApprovalRecord } from '../../protocol/approval-record.ts';
import type { ApprovalOutcome, ApprovalRequestDetails, ApprovalService } from '../service.ts';
import { approvalPolicyOf } from '../policy.ts';
import { approvalArguments } from '../preview.ts';
import type { GrantedCall } from '../grant.ts';
import { GatewayError, type ErrorCode } from '../../errors.ts';
import type { CallToolResult, ToolAnnotations } from '../../protocol/mcp.ts';
import { RpcErrorCode, type JsonRpcErrorObject } from '../../protocol/jsonrpc.ts';
import type { ClientFacts, InputRequiredResult, NormalizedCall } from '../../protocol/call.ts';
import { errorResult } from '../../protocol/tool-results.ts';
import { chooseChannel, holdBudgetFor, type ApprovalChannel } from './ladder.ts';
import { holdForApproval, UNTIL_EXPIRY_MS } from './hold.ts';
import { applyAnswer, askForm, askUrl } from './elicitation.ts';
import { answerIn, askInputRequired, stillPending } from './mrtr.ts';
import type { ApprovalRequestState, RelayRequestState, RequestStateCodec } from './request-state.ts';
import { actionRefusedResult, approversText, cancelledResult, deniedResult, expiredResult, pendingResult, refusedResult, runningResult, type ApprovalLinks } from './pending.ts';

export interface ApprovalGateOptions {
  /** How long a call is held open for a human (ms): progress holds, URL elicitation, a 2026-07-28 retry. */
  holdBudgetMs: number;
  /** Per `clientInfo.name` overrides of the hold budget (ms). */
  holdBudgetByClient?: Readonly<Record<string, number>>;
  /** How often a held call sends progress (ms). */
  holdProgressEveryMs: number;
  /** The approvals' default lifetime (config `approvals.ttl`), for what is kept until one is used (ms). */
  approvalTtlMs: number;
  links: ApprovalLinks;
  /** The MRTR requestState codec; without it, 2026-07-28 clients get the hold or the pending result. */
  requestStates?: () => Promise<RequestStateCodec>;
}

export interface ApprovalGateDeps {
  approvals: ApprovalService;
  /** The job's steps: the gate asks for the hold, and notes what the human's channel did. */
  steps: Pick<JobSteps, 'holdForApproval' | 'note'>;
  store: Store;
  log: Logger;
  options: ApprovalGateOptions;
}

/** What the gate needs of the tool a call is for: its name in policies, its upstream, its pinned definition, its hints. */
export interface GatedTool {
  /** `<upstream>__<tool>` (or `<method> <target>`): what the approval binds and shows. */
  id: string;
  server: string;
  /** The pinned definition's digest: an approval given for another definition is stale. */
  digest: string;
  facts: { annotations: ToolAnnotations | undefined };
}

/** One approval-gated call, as the pipeline hands it over once the kernel has asked for a human. */
export interface GateRequest {
  call: NormalizedCall;
  entry: GatedTool;
  jobId: string;
  argsDigest: string;
  decision: Decision;
  /** A 2026-07-28 retry's verified requestState. */
  resumed?: ApprovalRequestState;
}

/**
 * What the pipeline does next: run the call (its approval claimed; `execution` when the gateway runs it on
 * approval, to keep the result for the retry), answer with a tool result (and end the job as `ended`, or park it),
 * or answer `input_required`.
 */
export type GateOutcome =
  | { kind: 'run'; approval: ApprovalRecord; execution: boolean }
  | { kind: 'answer'; approval: ApprovalRecord; result: CallToolResult; ended?: 'DENIED' | 'CANCELLED' }
  | { kind: 'input_required'; approval: ApprovalRecord; result: InputRequiredResult };

const NO_CLIENT: ClientFacts = { era: 'legacy', capabilities: {} };
const ARGS_PREFIX = 'approval-args:';
const RESULT_PREFIX = 'approval-result:';
/** How long a call's arguments and a result run on approval outlive the approval's own TTL (ms). */
const KEEP_MARGIN_MS = 5 * 60_000;

/**
 * The approval gate of the call path: finds or creates the approval for the exact call, reaches the human through
 * the best channel the client negotiated (see ladder.ts), and turns the approval's fate into what the call does.
 * Everything it needs between a question and its answer lives in the approval store, the Store and the signed
 * requestState, so any replica can serve the retry.
 */
export class ApprovalGate {
  /** Approvals a call of this process is waiting on: granted, that call runs it, not the on-approval executor. */
  private readonly waiting = new Map<string, number>();
  private codec: Promise<RequestStateCodec> | undefined;
  private readonly parked = new WeakSet<GateRequest>();

  constructor(private readonly deps: ApprovalGateDeps) {}

  isWaitedOn = (approvalId: string): boolean => (this.waiting.get(approvalId) ?? 0) > 0;

  /**
   * Checks a 2026-07-28 retry's requestState before anything is decided: a state that is not ours, was altered
   * or has expired is a malformed request (-32602, as the SDK answers it). Undefined: no state to check.
   */
  async verifyState(call: NormalizedCall, now: number): Promise<{ state: ApprovalRequestState } | { relay: RelayRequestState } | { error: JsonRpcErrorObject } | undefined> {
    if (call.client?.era !== 'modern' || call.input?.requestState === undefined) return undefined;
    const codec = await this.requestStates();
    const verified = codec?.verify(call.input.requestState, now);
    if (verified?.ok) return 'relay' in verified ? { relay: verified.relay } : { state: verified.state };
    const problem = verified?.problem ?? 'signature';
    return { error: { code: RpcErrorCode.INVALID_PARAMS, message: 'Invalid or expired requestState', data: { code: 'GH_ERR_REQUEST_STATE_INVALID', problem } } };
  }

  /**
   * A later round of a call whose upstream asked for input (2026-07-28): the approval this very job consumed in an
   * earlier round still covers it, if it is bound to the same call. Undefined otherwise: the call is gated anew.
   */
  async continueRound(req: GateRequest, approvalId: string): Promise<GateOutcome | undefined> {
    const record = await this.deps.approvals.get(approvalId);
    if (record?.state !== 'consumed' || record.claimedBy?.jobId !== req.jobId || this.deps.approvals.verifyBinding(record, this.binding(req))) return undefined;
    return { kind: 'run', approval: record, execution: false };
  }

  async pass(req: GateRequest): Promise<GateOutcome> {
    if (req.call.executeFor !== undefined) return this.executeOnApproval(req, req.call.executeFor);
    if (req.resumed) return this.resume(req, req.resumed);
    const argsRef = await this.keepArguments(req);
    // A live grant an approver gave earlier is that approver's standing yes, for a call that has no approval of its own.
    const findGrant = () => this.deps.approvals.grants.find(this.binding(req), this.grantedCall(req), req.jobId);
    const outcome = await this.deps.approvals.resolve(this.binding(req), { ...this.details(req, argsRef), findGrant });
    if (argsRef && !(outcome.kind === 'pending' && outcome.created)) void this.deps.store.delete(argsRef);
    return this.follow(req, outcome);
  }

  /** `onApprove: execute`: once the gateway has run the call, its result is kept for the one retry that takes it. */
  async recordExecution(approval: ApprovalRecord, outcome: { result: CallToolResult } | { error: JsonRpcErrorObject }): Promise<void> {
    const { approvals, store } = this.deps;
    if ('result' in outcome) {
      const resultRef = `${RESULT_PREFIX}${approval.id}`;
      await store.set(resultRef, outcome.result, { ttlMs: this.keepMs(approval) });
      await approvals.recordExecution(approval.id, { resultRef });
    } else {
      await approvals.recordExecution(approval.id, { error: { code: 'GH_ERR_UPSTREAM_ERROR', message: outcome.error.message } });
    }
    if (approval.argsRef) void store.delete(approval.argsRef);
  }

  /** The arguments kept for a call the gateway runs on approval, if they are still there. */
  async keptArguments(approval: ApprovalRecord): Promise<Record<string, unknown> | undefined> {
    return approval.argsRef ? this.deps.store.get<Record<string, unknown>>(approval.argsRef) : undefined;
  }

  private follow(req: GateRequest, outcome: ApprovalOutcome): Promise<GateOutcome> | GateOutcome {
    const { approval } = outcome;
    switch (outcome.kind) {
      case 'run':
      case 'granted':
        return { kind: 'run', approval, execution: false };
      case 'result':
      case 'executing':
        return this.handOver(req, approval);
      case 'denied':
        return { kind: 'answer', approval, result: deniedResult(approval), ended: 'DENIED' };
      case 'expired':
        return { kind: 'answer', approval, result: expiredResult(approval), ended: 'DENIED' };
      case 'stale':
      case 'mismatch':
        return { kind: 'answer', approval, result: refusedResult(approval, outcome.code, outcome.reason), ended: 'DENIED' };
      case 'pending':
        return this.reach(req, approval);
    }
  }

  /** A pending approval: pick the channel from what the client negotiated and wait on it. */
  private async reach(req: GateRequest, approval: ApprovalRecord): Promise<GateOutcome> {
    const { approvals, options } = this.deps;
    const { call } = req;
    const client = call.client ?? NO_CLIENT;
    const budgetMs = this.budgetFor(client);
    const url = options.links.url(approval.id);
    const codec = client.era === 'modern' ? await this.requestStates() : undefined;
    let channel = chooseChannel({
      client,
      canAsk: call.reply.ask !== undefined,
      progressToken: call.reply.progressToken !== undefined,
      task: call.task !== undefined,
      callerMayApprove: approvals.mayAct(approval, call.caller.principal, 'approve') === undefined,
      hasPage: url !== undefined,
      holdBudgetMs: budgetMs,
    });
    if ((channel === 'mrtr_form' || channel === 'mrtr_url') && !codec) channel = call.reply.progressToken !== undefined && budgetMs > 0 ? 'hold' : 'pending';
    this.park(req, approval, channel);
    switch (channel) {
      case 'mrtr_form':
      case 'mrtr_url':
        return { kind: 'input_required', approval, result: askInputRequired(codec!, approval, channel === 'mrtr_form' ? 'form' : 'url', url) };
      case 'url_elicitation':
        return this.waitingOn(approval, async () => this.afterWait(req, await askUrl(this.elicitation(req, approval, budgetMs), url!), channel));
      case 'form_elicitation':
        return this.waitingOn(approval, async () => {
          const { record, refused } = await askForm(this.elicitation(req, approval, budgetMs));
          if (refused && !call.reply.signal.aborted) return { kind: 'answer', approval: record, result: actionRefusedResult(record, refused.code, refused.message, options.links) };
          return this.afterWait(req, record, channel);
        });
      case 'hold':
        return this.waitingOn(approval, async () => this.afterWait(req, await this.hold(req, approval, budgetMs), channel));
      case 'task':
        // A task outlives any request: it waits as long as the approval lives.
        return this.waitingOn(approval, async () => {
          call.task!.waiting(this.waitMessage(approval));
          const record = await this.deps.approvals.waitForSettled(approval.id, UNTIL_EXPIRY_MS, { signal: call.reply.signal });
          call.task!.working();
          return this.afterWait(req, record, channel);
        });
      default:
        return { kind: 'answer', approval, result: pendingResult(approval, options.links) };
    }
  }

  /**
   * A 2026-07-28 retry: the approval its requestState names must be bound to this very call. The client's answer
   * (a confirmed form approves as the caller; decline denies; cancel withdraws) is applied, then the retry is
   * held within the hold budget; still pending after that, it answers `input_required` again.
   */
  private async resume(req: GateRequest, state: ApprovalRequestState): Promise<GateOutcome> {
    const { approvals, options } = this.deps;
    const { call } = req;
    const binding = this.binding(req);
    const record = await approvals.get(state.approvalId);
    if (!record) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `no approval ${state.approvalId}`, { data: { approvalId: state.approvalId } });
    const refusal =
      approvals.verifyBinding(record, binding) ??
      (state.binding === bindingKeyOf(binding) ? undefined : { code: 'GH_ERR_APPROVAL_MISMATCH' as const, reason: 'the call differs from the one the requestState was issued for' });
    if (refusal?.code === 'GH_ERR_APPROVAL_MISMATCH') return { kind: 'answer', approval: record, result: refusedResult(record, refusal.code, refusal.reason), ended: 'DENIED' };
    if (refusal) return this.follow(req, await approvals.resume(record.id, binding, this.details(req)));

    if (record.state !== 'pending') return this.settle(req, record);
    const channel: ApprovalChannel = state.ask === 'form' ? 'mrtr_form' : 'mrtr_url';
    this.park(req, record, channel, { resumed: true });
    const refused = await applyAnswer(approvals, record, call.caller.principal, answerIn(call.input?.inputResponses, state.ask), call.client?.name);
    if (refused) return { kind: 'answer', approval: record, result: actionRefusedResult(record, refused.code, refused.message, options.links) };
    return this.waitingOn(record, async () => {
      let current = (await approvals.get(record.id)) ?? record;
      if (current.state === 'pending') current = await this.hold(req, current, this.budgetFor(call.client ?? NO_CLIENT));
      if (current.state === 'pending' && !call.reply.signal.aborted) return { kind: 'input_required', approval: current, result: stillPending((await this.requestStates())!, current, state.ask) };
      return this.afterWait(req, current, channel);
    });
  }

  /** After waiting on a channel: a client that gave up withdraws the approval; a settled one decides the call. */
  private async afterWait(req: GateRequest, record: ApprovalRecord, channel: ApprovalChannel): Promise<GateOutcome> {
    const { approvals, steps, options } = this.deps;
    const { call } = req;
    if (call.reply.signal.aborted) {
      // A pending approval is withdrawn; one granted meanwhile waits for a retry (or runs, with onApprove: execute).
      const current = record.state === 'pending' ? ((await approvals.cancel(record.id, call.caller.principal, 'the client cancelled the call')) ?? record) : record;
      return { kind: 'answer', approval: current, result: cancelledResult(current, 'the client cancelled it'), ended: 'CANCELLED' };
    }
    if (record.state === 'pending') {
      steps.note(req.jobId, 'job.approval_channel', 'approvals', { approvalId: record.id, channel: 'pending', after: channel });
      return { kind: 'answer', approval: record, result: pendingResult(record, options.links) };
    }
    return this.settle(req, record);
  }

  /** What a settled approval means for this call. */
  private async settle(req: GateRequest, record: ApprovalRecord): Promise<GateOutcome> {
    const { approvals, options } = this.deps;
    switch (record.state) {
      case 'approved': {
        const claimed = await approvals.claim(record.id, req.jobId, req.decision.policySnapshot);
        if (claimed) return { kind: 'run', approval: claimed, execution: false };
        return this.afterUse(req, (await approvals.get(record.id)) ?? record);
      }
      case 'consumed':
        return this.afterUse(req, record);
      case 'denied':
        return { kind: 'answer', approval: record, result: deniedResult(record), ended: 'DENIED' };
      case 'expired': {
        const reported = await approvals.reportExpiry(record.id);
        return { kind: 'answer', approval: reported, result: expiredResult(reported), ended: 'DENIED' };
      }
      case 'cancelled': {
        const last = record.history[record.history.length - 1];
        return { kind: 'answer', approval: record, result: cancelledResult(record, last?.reason ?? 'withdrawn'), ended: 'CANCELLED' };
      }
      case 'pending':
        return { kind: 'answer', approval: record, result: pendingResult(record, options.links) };
    }
  }

  /** Someone else used the approval: the gateway ran it (take its result), or another call did (ask anew). */
  private async afterUse(req: GateRequest, record: ApprovalRecord): Promise<GateOutcome> {
    if (record.execution) return this.handOver(req, record);
    return this.follow(req, await this.deps.approvals.resolve(this.binding(req), this.details(req)));
  }

  /** Hands the result of a call the gateway ran on approval to this retry, once; waits for it while it runs. */
  private async handOver(req: GateRequest, approval: ApprovalRecord): Promise<GateOutcome> {
    const { approvals, store } = this.deps;
    let record = approval;
    if (record.execution && record.execution.finishedAt === undefined) {
      record = await approvals.waitForResult(record.id, this.budgetFor(req.call.client ?? NO_CLIENT), { signal: req.call.reply.signal });
    }
    const execution = record.execution;
    if (!execution || execution.finishedAt === undefined) return { kind: 'answer', approval: record, result: runningResult(record) };
    if (execution.takenBy !== req.jobId) {
      const taken = execution.takenBy === undefined ? await approvals.takeResult(record.id, req.jobId) : undefined;
      if (!taken) return this.follow(req, await approvals.resolve(this.binding(req), this.details(req)));
      record = taken;
    }
    const ran = record.execution!;
    this.deps.steps.note(req.jobId, 'job.result_handed', 'approvals', { approvalId: record.id, executedBy: ran.jobId });
    if (ran.error) return { kind: 'answer', approval: record, result: errorResult(ran.error.code as ErrorCode, `The call run on approval ${record.id} failed: ${ran.error.message}`) };
    const result = ran.resultRef ? await store.get<CallToolResult>(ran.resultRef) : undefined;
    if (ran.resultRef) void store.delete(ran.resultRef);
    return { kind: 'answer', approval: record, result: result ?? errorResult('GH_ERR_INTERNAL', `The call ran on approval ${record.id}, but its result is no longer kept.`) };
  }

  /** The gateway runs a granted `onApprove: execute` call as its caller: claim it, unless a retry came first. */
  private async executeOnApproval(req: GateRequest, approvalId: string): Promise<GateOutcome> {
    const { approvals } = this.deps;
    const record = await approvals.get(approvalId);
    if (!record) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `no approval ${approvalId}`);
    const refusal = approvals.verifyBinding(record, this.binding(req));
    if (refusal) return { kind: 'answer', approval: record, result: refusedResult(record, refusal.code, refusal.reason), ended: 'DENIED' };
    const claimed = await approvals.claimForExecution(record.id, req.jobId, req.decision.policySnapshot);
    if (!claimed) return { kind: 'answer', approval: record, result: errorResult('GH_ERR_APPROVAL_INVALID_STATE', `approval ${record.id} was used by another call`), ended: 'CANCELLED' };
    return { kind: 'run', approval: claimed, execution: true };
  }

  /** The job waits for a human (audited with the channel), once per call even if it then asks anew. */
  private park(req: GateRequest, approval: ApprovalRecord, channel: ApprovalChannel, extra: Record<string, unknown> = {}): void {
    if (this.parked.has(req)) return;
    this.parked.add(req);
    this.deps.steps.holdForApproval(req.jobId, { approvalId: approval.id, channel, ...extra });
  }

  private hold(req: GateRequest, approval: ApprovalRecord, budgetMs: number): Promise<ApprovalRecord> {
    const { options } = this.deps;
    return holdForApproval(this.deps.approvals, approval.id, req.call.reply, { budgetMs, everyMs: options.holdProgressEveryMs, message: this.waitMessage(approval) });
  }

  private elicitation(req: GateRequest, approval: ApprovalRecord, budgetMs: number) {
    const { call } = req;
    return {
      approvals: this.deps.approvals,
      approval,
      reply: call.reply,
      caller: call.caller.principal,
      clientName: call.client?.name,
      budgetMs,
      everyMs: this.deps.options.holdProgressEveryMs,
      message: this.waitMessage(approval),
    };
  }

  /** "Waiting for approval … by …; approve at …": what a held call's progress says. */
  private waitMessage(approval: ApprovalRecord): string {
    const url = this.deps.options.links.url(approval.id);
    return `Waiting for approval ${approval.id} by ${approversText(approval)}; ${url ? `approve at ${url}` : this.deps.options.links.hint(approval.id)}`;
  }

  private async waitingOn<T>(approval: ApprovalRecord, wait: () => Promise<T>): Promise<T> {
    this.waiting.set(approval.id, (this.waiting.get(approval.id) ?? 0) + 1);
    try {
      return await wait();
    } finally {
      const left = (this.waiting.get(approval.id) ?? 1) - 1;
      if (left > 0) this.waiting.set(approval.id, left);
      else this.waiting.delete(approval.id);
    }
  }

  private budgetFor(client: ClientFacts): number {
    const { options } = this.deps;
    return holdBudgetFor(client, options.holdBudgetMs, options.holdBudgetByClient);
  }

  /** `onApprove: execute` needs the arguments once the approval is granted: kept in the Store, never on disk. */
  private async keepArguments(req: GateRequest): Promise<string | undefined> {
    const policy = approvalPolicyOf(req.decision.approvals);
    if (policy.onApprove !== 'execute') return undefined;
    const argsRef = `${ARGS_PREFIX}${req.jobId}`;
    await this.deps.store.set(argsRef, req.call.arguments, { ttlMs: (policy.ttlMs ?? this.deps.options.approvalTtlMs) + KEEP_MARGIN_MS });
    return argsRef;
  }

  private keepMs(approval: ApprovalRecord): number {
    return Math.max(approval.expiresAt - approval.createdAt, this.deps.options.approvalTtlMs) + KEEP_MARGIN_MS;
  }

  private requestStates(): Promise<RequestStateCodec | undefined> {
    const make = this.deps.options.requestStates;
    if (!make) return Promise.resolve(undefined);
    // A key that could not be read is tried again on the next call rather than remembered as a failure.
    this.codec ??= make().catch((err: unknown) => {
      this.codec = undefined;
      throw err;
    });
    return this.codec;
  }

  private binding(req: GateRequest): ApprovalBinding {
    const { call, entry, argsDigest, decision } = req;
    return { tenant: call.caller.tenant, principal: call.caller.principal, server: entry.server, tool: entry.id, argsDigest, toolDigest: entry.digest, policySnapshot: decision.policySnapshot };
  }

  private grantedCall(req: GateRequest): GrantedCall {
    const { call, decision, entry } = req;
    return { sessionId: call.caller.sessionId, arguments: call.arguments, effect: decision.effect, ruleIds: decision.ruleIds, toolDigest: entry.digest, approval: this.deps.approvals.policyOf(decision.approvals) };
  }

  private details(req: GateRequest, argsRef?: string): ApprovalRequestDetails {
    const { call, entry, jobId, decision } = req;
    return {
      jobId,
      ruleIds: decision.ruleIds,
      reason: decision.reason,
      ...(entry.facts.annotations ? { annotations: entry.facts.annotations } : {}),
      ...approvalArguments(call.arguments, decision.constraints.redact?.args),
      specs: decision.approvals,
      ...(argsRef ? { argsRef } : {}),
      ...(call.caller.sessionId ? { sessionId: call.caller.sessionId } : {}),
      logFields: callLogFields(call, jobId),
    };
  }
}
