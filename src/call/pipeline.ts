import type { Clock, DeadLetter, Store } from '../ports.ts';
import type { Logger } from '../log.ts';
import type { JobTracker } from '../scheduler/job-tracker.ts';
import type { AuditTrail } from '../audit/trail.ts';
import type { Kernel } from '../kernel/kernel.ts';
import type { Decision, DecisionInput } from '../kernel/decision.ts';
import type { ApprovalService } from '../approvals/service.ts';
import type { ApprovalRecord } from '../protocol/approval-record.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import type { RetryOutcome } from '../scheduler/reconciler.ts';
import type { JobClientLink, StoredResult } from '../scheduler/executor.ts';
import type { JobContext } from '../protocol/job-context.ts';
import { PAYLOAD_TTL_MS } from '../protocol/job-context.ts';
import { mergeConstraints } from '../kernel/constraints.ts';
import { contextPtr, JobPriority, JobStatus, resultPtr, type JobRequest } from '../protocol/cap.ts';
import { digestOf } from '../protocol/digest.ts';
import { ulid } from '../protocol/ulid.ts';
import { RpcErrorCode, type JsonRpcErrorObject } from '../protocol/jsonrpc.ts';
import type { CallToolResult } from '../protocol/mcp.ts';
import { asGatewayError, type ErrorCode, type GatewayError } from '../errors.ts';
import { RateLimiter } from '../enforcement/throttle.ts';
import { SessionQuotas } from '../enforcement/session-quota.ts';
import { recordedInput, type RecordArguments } from '../audit/recorded-input.ts';
import { impliedRiskTags } from '../kernel/hints.ts';
import { IDEMPOTENT_LABEL, isIdempotentTool } from '../scheduler/idempotency.ts';
import { isRefusal, type RefusalDetail } from '../enforcement/refusal.ts';
import { verdictOf, type ConstraintRefusal } from '../kernel/verdict.ts';
import type { CatalogEntry, ToolCatalog } from './catalog.ts';
import type { CallOutcome, NormalizedCall, ReplyChannel } from '../protocol/call.ts';
import { errorResult, withJobMeta } from './tool-results.ts';
import { ApprovalGate, type GateOutcome } from '../approvals/channels/gate.ts';
import type { RequestStateCodec } from '../approvals/channels/request-state.ts';

export interface CallPipelineOptions {
  /** How long a call with a progress token is held open waiting for a human (ms). */
  holdBudgetMs: number;
  /** How often a held call sends progress (ms). */
  holdProgressEveryMs: number;
  /** The per-upstream request timeout from the config, when the policy sets none (ms). */
  upstreamTimeoutMs(server: string): number;
  /** Which pool serves an upstream's jobs, and whether workers elsewhere (not this process) run it. */
  placement(server: string): { pool: string; remote: boolean };
  /** Per-client hold budgets by `clientInfo.name` (ms); `holdBudgetMs` for the others. */
  holdBudgetByClient?: Readonly<Record<string, number>>;
  /** Tells the human where to approve: the page and a CLI line. */
  approvalHint(approvalId: string): string;
  /** The approval page (`<publicUrl or HTTP address>/approvals/<id>`), when there is one. */
  approvalUrl?(approvalId: string): string | undefined;
  /** The approvals' default lifetime (config `approvals.ttl`, ms): how long arguments kept for `onApprove: execute` live. */
  approvalTtlMs?: number;
  /** Signs and checks MRTR requestState; without it 2026-07-28 clients get the hold or the pending result. */
  requestStates?: () => Promise<RequestStateCodec>;
  /**
   * How long the kernel may take to decide (ms, default 50). A slower decision is thrown away and the call
   * denied with GH_ERR_KERNEL_UNAVAILABLE (fail closed), as is a kernel that throws.
   */
  decisionBudgetMs?: number;
  /** How much of the arguments `job.decided` records (config `audit.recordArguments`, default `redacted`). */
  recordArguments?: RecordArguments;
}

const DEFAULT_DECISION_BUDGET_MS = 50;
const DEFAULT_APPROVAL_TTL_MS = 15 * 60_000;

export interface CallPipelineDeps {
  catalog: ToolCatalog;
  kernel: Kernel;
  approvals: ApprovalService;
  scheduler: Scheduler;
  store: Store;
  jobs: JobTracker;
  audit: Pick<AuditTrail, 'accepting'>;
  log: Logger;
  options: CallPipelineOptions;
  /** Times decisions and throttle windows; the system clock when not given. */
  clock?: Pick<Clock, 'now'>;
}

const wallClock: Pick<Clock, 'now'> = { now: () => Date.now() };

/**
 * The governed path of one `tools/call`: resolve and validate, turn it into a CAP job, let the kernel decide,
 * gate it on a human where the policy says so, run it through the scheduler, and answer. Transport-agnostic:
 * the fronts hand it a NormalizedCall and send back what it returns.
 */
export class CallPipeline {
  /** What an upstream sends while serving a job (requests, logging) goes back to the client that made the call. */
  private readonly links = new Map<string, JobClientLink>();
  /** Calls in progress: the gateway stops only once each has recorded how it ended. */
  private readonly running = new Set<Promise<CallOutcome>>();
  private readonly clock: Pick<Clock, 'now'>;
  private readonly limiter: RateLimiter;
  private readonly quotas: SessionQuotas;
  /** Where a call the policy puts before a human waits for one. */
  readonly approvalGate: ApprovalGate;

  constructor(private readonly deps: CallPipelineDeps) {
    this.clock = deps.clock ?? wallClock;
    this.limiter = new RateLimiter(deps.store, this.clock);
    this.quotas = new SessionQuotas(deps.store);
    const { options } = deps;
    this.approvalGate = new ApprovalGate({
      approvals: deps.approvals,
      jobs: deps.jobs,
      store: deps.store,
      log: deps.log,
      options: {
        holdBudgetMs: options.holdBudgetMs,
        ...(options.holdBudgetByClient ? { holdBudgetByClient: options.holdBudgetByClient } : {}),
        holdProgressEveryMs: options.holdProgressEveryMs,
        approvalTtlMs: options.approvalTtlMs ?? DEFAULT_APPROVAL_TTL_MS,
        links: { url: (id) => options.approvalUrl?.(id), hint: (id) => options.approvalHint(id) },
        ...(options.requestStates ? { requestStates: options.requestStates } : {}),
      },
    });
  }

  clientFor = (jobId: string): JobClientLink | undefined => this.links.get(jobId);

  /**
   * Runs one call. `target` is set for a request other than a tool call (a resource, prompt or completion request,
   * see governed-requests.ts): it takes the place of the catalog's tool.
   */
  call(call: NormalizedCall, target?: CatalogEntry): Promise<CallOutcome> {
    const running = this.run(call, target);
    this.running.add(running);
    const forget = () => void this.running.delete(running);
    running.then(forget, forget);
    return running;
  }

  /** Resolves once no call is in progress, counting those that start meanwhile. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled(this.running);
  }

  private async run(call: NormalizedCall, target: CatalogEntry | undefined): Promise<CallOutcome> {
    const { catalog, kernel, jobs } = this.deps;
    const entry = target ?? catalog.resolve(call.name);
    if (!entry) {
      const down = catalog.unavailable(call.name);
      if (down) return { result: down };
      return { error: { code: RpcErrorCode.INVALID_PARAMS, message: `Unknown tool: ${call.name}`, data: { code: 'GH_ERR_UNKNOWN_TOOL', tool: call.name } } };
    }
    if (!this.deps.audit.accepting) {
      return { result: errorResult('GH_ERR_AUDIT_UNAVAILABLE', 'The audit trail cannot be written right now, so no tool runs (fail closed). Try again later.') };
    }
    const invalid = entry.check(call.arguments);
    if (invalid) {
      return { result: errorResult('GH_ERR_INVALID_ARGUMENTS', `Invalid arguments for ${call.name}: ${invalid}`) };
    }
    // A 2026-07-28 retry names its approval in a signed requestState: one we did not sign is refused first.
    // (Only such a retry pays for the await: this is the hot path.)
    const resumed = call.input?.requestState === undefined ? undefined : await this.approvalGate.verifyState(call, this.clock.now());
    if (resumed && 'error' in resumed) return { error: resumed.error };

    const jobId = ulid();
    const argsDigest = digestOf(call.arguments);
    const { principal, tenant } = call.caller;
    jobs.submit(jobId, tenant, principal, { topic: `mcp.${entry.server}.${entry.tool.name}`, server: entry.server, tool: entry.id, ...(entry.request ? { method: entry.request.method } : {}), argsDigest, toolDigest: entry.digest, ...(call.caller.sessionId ? { session: call.caller.sessionId } : {}), ...(call.meta?.traceparent ? { traceparent: String(call.meta.traceparent) } : {}) });

    const now = this.clock.now();
    const input = decisionInput(call, entry, now);
    let decision: Decision;
    try {
      decision = kernel.decide(input);
    } catch (err) {
      return this.kernelUnavailable(jobId, `the kernel failed: ${String((err as Error)?.message ?? err).slice(0, 200)}`);
    }
    const budgetMs = this.deps.options.decisionBudgetMs ?? DEFAULT_DECISION_BUDGET_MS;
    const tookMs = this.clock.now() - now;
    if (tookMs > budgetMs) return this.kernelUnavailable(jobId, `the decision took ${tookMs} ms, over its ${budgetMs} ms budget`);
    // The constraints on the arguments, checked before anyone is asked (and again by the executor); outside the
    // decision's budget, since they read every argument.
    const { refusal } = verdictOf(input, decision);
    // `input` is what `policy replay` re-decides on: keep its shape (a DecisionInput, arguments as `audit.recordArguments` says).
    const decided: Record<string, unknown> = { effect: decision.effect, ruleIds: decision.ruleIds, policySnapshot: decision.policySnapshot, reason: decision.reason, input: recordedInput(input, decision.constraints.redact?.args, this.deps.options.recordArguments ?? 'redacted') };
    if (decision.errors?.length) decided.errors = decision.errors;
    if (refusal) decided.refusal = { code: refusal.code, ...refusalDetail(refusal) };
    jobs.note(jobId, 'job.decided', 'kernel', decided);
    const jobMeta = { jobId, decision: decision.effect, ruleIds: decision.ruleIds, policySnapshot: decision.policySnapshot };

    if (decision.effect === 'deny') {
      jobs.move(jobId, 'DENIED', 'kernel', { ruleIds: decision.ruleIds });
      const { reason, remediation } = decision;
      return {
        result: errorResult('GH_ERR_POLICY_DENIED', `Denied by policy: ${reason.replace(/[.\s]+$/, '')}.${remediation ? ` ${remediation}` : ''}${failedConditions(decision)}`, { 'gatehouse/job': jobMeta }, remediation ? { remediation } : undefined),
      };
    }

    // A call that could never run is refused now, whatever the decision: nobody is asked, nothing is counted.
    if (refusal) return this.refuse(jobId, jobMeta, refusal.code, refusal.message, refusalDetail(refusal));
    // A call held for a human uses up nothing, but one its limits would refuse is not held (a peek, not a count).
    if (decision.effect === 'require_approval' && call.executeFor === undefined && (decision.throttles?.length || decision.constraints.maxCallsPerSession?.length)) {
      const refused = await this.countCall(call, entry, decision, 'peek');
      if (refused) return this.refuse(jobId, jobMeta, refused.code, refused.message, refused.data as RefusalDetail | undefined, refused.message);
    }

    // A call the gateway runs on approval passes the gate whatever the policy now says, so its claim is taken.
    let runsOnApproval: ApprovalRecord | undefined;
    if (decision.effect === 'require_approval' || call.executeFor !== undefined) {
      let gate: GateOutcome;
      try {
        gate = await this.approvalGate.pass({ call, entry, jobId, argsDigest, decision, ...(resumed ? { resumed: resumed.state } : {}) });
      } catch (err) {
        // The approvals could not be read or written: nobody can have approved this call, so it does not run.
        const error = asGatewayError(err);
        this.deps.log.error('approval handling failed; denying (fail closed)', { jobId, code: error.code, error: error.message });
        jobs.move(jobId, 'DENIED', 'approvals', { errorCode: error.code });
        return { result: errorResult(error.code, `The approval for this call could not be handled, so it did not run: ${error.message}`, { 'gatehouse/job': jobMeta }) };
      }
      if (gate.kind === 'input_required') {
        jobs.release(jobId); // parked on a pending approval: the retry of the call is a job of its own
        return { inputRequired: gate.result };
      }
      if (gate.kind === 'answer') {
        if (gate.ended) jobs.move(jobId, gate.ended, 'approvals', { approvalId: gate.approval.id, approval: gate.approval.state });
        else jobs.release(jobId);
        return { result: withJobMeta(gate.result, { ...jobMeta, approvalId: gate.approval.id }) };
      }
      Object.assign(jobMeta, { approvalId: gate.approval.id });
      if (gate.execution) runsOnApproval = gate.approval;
    }

    // Counted after the approval gate, right before dispatch, so that a call held for a human uses up nothing.
    if (decision.throttles?.length || decision.constraints.maxCallsPerSession?.length) {
      const refused = await this.countCall(call, entry, decision, 'take');
      if (refused) return this.refuse(jobId, jobMeta, refused.code, refused.message, refused.data as RefusalDetail | undefined, refused.message);
    }

    const outcome = await this.dispatch(call, entry, jobId, decision, jobMeta);
    if (runsOnApproval) await this.approvalGate.recordExecution(runsOnApproval, outcome);
    return outcome;
  }

  /**
   * `onApprove: execute`: runs a granted call as the caller who asked for it, through the whole path (decided
   * under the current policy, counted, constrained), with nobody to answer: the result is kept for the retry.
   */
  async executeApproved(approval: ApprovalRecord): Promise<void> {
    const args = await this.approvalGate.keptArguments(approval);
    const entry = this.deps.catalog.entries().find((e) => e.id === approval.tool);
    if (!args || !entry) {
      this.deps.log.warn('an approved call cannot run on approval (its arguments or tool are gone); it runs when the client retries', { approvalId: approval.id });
      return;
    }
    await this.callUnattended({ caller: { principal: approval.principal, tenant: approval.tenant }, name: entry.name, arguments: args, meta: undefined, executeFor: approval.id });
  }

  /**
   * `gatehouse dlq retry`: runs a dead job's call again as its caller, through the whole path (decided under the
   * current policy, counted, constrained, scheduled) as a new job, with nobody to answer: how it ended is only
   * audited. Undefined when the tool is not served here.
   */
  async resubmit(dead: DeadLetter): Promise<RetryOutcome | undefined> {
    const context = dead.context;
    const entry = context && this.deps.catalog.entries().find((e) => e.server === dead.server && e.tool.name === context.tool);
    if (!context || !entry) return undefined;
    const outcome = await this.callUnattended({ caller: { principal: dead.principal, tenant: dead.tenant }, name: entry.name, arguments: context.arguments, meta: context.meta });
    if ('error' in outcome && outcome.error) return { errorCode: String((outcome.error.data as { code?: unknown } | undefined)?.code ?? 'GH_ERR_INVALID_REQUEST') };
    if (!('result' in outcome)) return { errorCode: 'GH_ERR_APPROVAL_PENDING' };
    const meta = outcome.result._meta as { 'gatehouse/job'?: { jobId?: string }; 'gatehouse/error'?: { code?: string } } | undefined;
    const jobId = meta?.['gatehouse/job']?.jobId;
    return { ...(jobId ? { jobId } : {}), ...(outcome.result.isError ? { errorCode: meta?.['gatehouse/error']?.code ?? 'tool_error' } : {}) };
  }

  /** A call the gateway makes itself, as its caller, with nobody to answer: no progress, no questions, no cancel. */
  private callUnattended(call: Omit<NormalizedCall, 'reply'>): Promise<CallOutcome> {
    const reply: ReplyChannel = { signal: new AbortController().signal, progressToken: undefined, notify: () => undefined, ask: undefined };
    return this.call({ ...call, reply });
  }

  private kernelUnavailable(jobId: string, reason: string): CallOutcome {
    this.deps.log.error('the kernel could not decide; denying (fail closed)', { jobId, reason });
    this.deps.jobs.move(jobId, 'DENIED', 'kernel', { errorCode: 'GH_ERR_KERNEL_UNAVAILABLE', reason });
    return { result: errorResult('GH_ERR_KERNEL_UNAVAILABLE', `The safety kernel could not decide on this call (${reason}), so it was denied. Try again later.`) };
  }

  /**
   * A call refused by an enforced constraint or limit: it ends DENIED, audited with the constraint's code and
   * detail (and `reason` where the message quotes no argument value).
   */
  private refuse(jobId: string, jobMeta: Record<string, unknown>, code: ErrorCode, message: string, detail: RefusalDetail | undefined, reason?: string): CallOutcome {
    this.deps.jobs.move(jobId, 'DENIED', 'enforcement', { errorCode: code, ...(reason ? { reason } : {}), ...detail });
    return { result: errorResult(code, message, { 'gatehouse/job': jobMeta }, detail) };
  }

  /**
   * Applies the decision's throttles and session quotas (`take`), or only asks whether they would admit the call
   * (`peek`, counting nothing). A refusal, or any failure to read the counts (fail closed), comes back.
   */
  private async countCall(call: NormalizedCall, entry: CatalogEntry, decision: Decision, mode: 'take' | 'peek'): Promise<GatewayError | undefined> {
    const { tenant, principal, sessionId } = call.caller;
    try {
      if (decision.throttles?.length) await this.limiter[mode](decision.throttles, { tenant, principal, tool: entry.id });
      const quotas = decision.constraints.maxCallsPerSession;
      if (quotas?.length) await this.quotas[mode](quotas, { tenant, principal, ...(sessionId ? { sessionId } : {}) });
      return undefined;
    } catch (err) {
      const error = asGatewayError(err);
      if (isRefusal(error)) return error;
      this.deps.log.error('could not count the call against its limits; denying (fail closed)', { code: error.code, error: error.message });
      return asGatewayError(new Error(`The call's rate limits could not be checked, so it did not run: ${error.message}`), error.code);
    }
  }

  private async dispatch(call: NormalizedCall, entry: CatalogEntry, jobId: string, decision: Decision, jobMeta: Record<string, unknown>): Promise<{ result: CallToolResult } | { error: JsonRpcErrorObject }> {
    const { store, scheduler, options } = this.deps;
    const answered = entry.request?.answered;
    if (answered) {
      this.deps.jobs.move(jobId, 'SUCCEEDED', 'gateway', { upstream: 'not asked: it already holds what was requested' });
      return { result: withJobMeta(answered as CallToolResult, jobMeta) };
    }
    const { principal, tenant, sessionId } = call.caller;
    const constraints = mergeConstraints(decision.constraints, { timeoutMs: options.upstreamTimeoutMs(entry.server) });
    // Reading a resource or a prompt twice changes nothing: such a job may run again if delivered twice.
    const idempotent = entry.request !== undefined || isIdempotentTool(entry.facts.annotations);
    const context: JobContext = {
      server: entry.server,
      tool: entry.tool.name,
      arguments: call.arguments,
      constraints,
      ...(call.meta ? { meta: call.meta } : {}),
      wantsProgress: call.reply.progressToken !== undefined,
      ...(entry.request ? { request: { method: entry.request.method, params: entry.request.params } } : {}),
    };
    const job: JobRequest = {
      jobId,
      topic: `mcp.${entry.server}.${entry.tool.name}`,
      priority: JobPriority.INTERACTIVE,
      contextPtr: contextPtr(jobId),
      env: {},
      tenantId: tenant,
      principalId: principal,
      labels: {
        'mcp.server': entry.server,
        'mcp.tool': entry.tool.name,
        ...(sessionId ? { 'mcp.session': sessionId } : {}),
        ...(idempotent ? { [IDEMPOTENT_LABEL]: 'true' } : {}),
      },
      meta: {
        tenantId: tenant,
        actorId: principal,
        actorType: 'user',
        capability: entry.tool.name,
        riskTags: riskTags(entry),
        requires: [],
        labels: {},
      },
      ...(constraints.timeoutMs ? { budget: { deadlineMs: constraints.timeoutMs } } : {}),
    };
    await store.set(job.contextPtr, context, { ttlMs: PAYLOAD_TTL_MS });
    this.links.set(jobId, { ask: call.reply.ask, notify: (method, params) => call.reply.notify(method, params ?? {}) });
    const progressToken = call.reply.progressToken;
    try {
      const result = await scheduler.run(job, {
        ...options.placement(entry.server),
        idempotent,
        context,
        traceId: traceIdOf(call.meta?.traceparent),
        signal: call.reply.signal,
        onProgress: progressToken === undefined ? undefined : (update) => call.reply.notify('notifications/progress', { progressToken, ...update }),
      });
      const stored = result.resultPtr ? await store.get<StoredResult>(resultPtr(jobId)) : undefined;
      if (stored && 'rpcError' in stored) return { error: stored.rpcError };
      if (stored && 'refusal' in stored) return { result: errorResult(stored.refusal.code, stored.refusal.message, { 'gatehouse/job': jobMeta }, stored.refusal.detail) };
      if (result.status === JobStatus.SUCCEEDED && stored && 'result' in stored) {
        return { result: withJobMeta(stored.result, { ...jobMeta, ...(stored.truncated ? { truncated: true } : {}) }) };
      }
      const code = (result.errorCode ?? 'GH_ERR_INTERNAL') as ErrorCode;
      return { result: errorResult(code, result.errorMessage ?? 'the call failed', { 'gatehouse/job': jobMeta }) };
    } catch (err) {
      const error = asGatewayError(err);
      return { result: errorResult(error.code, error.message, { 'gatehouse/job': jobMeta }) };
    } finally {
      this.links.delete(jobId);
      void store.delete(job.contextPtr);
      void store.delete(resultPtr(jobId));
    }
  }
}

/**
 * Why a deny rule matched on a condition that threw (a relative path, a missing key): the model can act on that,
 * and would not guess it from the rule's reason alone. Empty when every deciding rule's condition held.
 */
function failedConditions(decision: Decision): string {
  const failed = decision.errors?.filter((e) => decision.ruleIds.includes(e.ruleId));
  if (!failed?.length) return '';
  return ` (The condition of ${failed.map((e) => `rule ${e.ruleId} failed on these arguments: ${e.error.replace(/[.\s]+$/, '')}`).join('; ')}; a condition that fails counts as a match for deny.)`;
}

/** The trace id of a W3C traceparent (`00-<32 hex trace id>-<16 hex span id>-<flags>`), if the call carried one. */
export function traceIdOf(traceparent: unknown): string | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const match = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent.trim());
  return match && !/^0+$/.test(match[1]) ? match[1] : undefined;
}

/** What the kernel and the constraint checks decide a call on: the call, and the tool facts of the catalog. */
function decisionInput(call: NormalizedCall, entry: CatalogEntry, now: number): DecisionInput {
  const { facts } = entry;
  const input: DecisionInput = { tenant: call.caller.tenant, principal: call.caller.principal, server: entry.server, tool: entry.id, annotations: facts.annotations, riskTags: facts.riskTags, labels: facts.labels, args: call.arguments, now };
  if (facts.upstreamUrl) input.upstreamUrl = facts.upstreamUrl;
  const { request } = entry;
  if (request) Object.assign(input, { kind: request.kind, method: request.method, [request.kind === 'resource' ? 'uri' : 'prompt']: request.target });
  return input;
}

/** What the audit trail keeps of a refusal: which constraint and argument, not the message, which quotes the value. */
function refusalDetail({ ruleId, argument }: ConstraintRefusal): RefusalDetail {
  return { ...(ruleId ? { ruleId } : {}), ...(argument ? { argument } : {}) };
}

/** The job's risk tags: those the tool's annotations imply, read as the kernel reads them, plus the declared ones. */
function riskTags(entry: CatalogEntry): string[] {
  if (entry.request) return [];
  const implied = impliedRiskTags(entry.facts.annotations);
  return entry.facts.riskTags.length === 0 ? implied : [...new Set([...implied, ...entry.facts.riskTags])];
}
