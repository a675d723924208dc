import type { CallerTokenExchange, Clock, DeadLetter, Metrics, ServerRequestHandler, Store } from '../ports.ts';
import type { Logger } from '../log.ts';
import type { AuditTrail } from '../audit/trail.ts';
import type { Kernel } from '../kernel/kernel.ts';
import type { Decision } from '../kernel/decision.ts';
import type { ShadowPolicies } from '../kernel/shadow.ts';
import type { ApprovalService } from '../approvals/service.ts';
import type { ApprovalEdit, ApprovalRecord } from '../protocol/approval-record.ts';
import { editedCall, withEditNote } from './approved-edit.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import type { RetryOutcome } from '../scheduler/reconciler.ts';
import type { JobClientLink, StoredResult } from '../scheduler/executor.ts';
import type { JobContext } from '../protocol/job-context.ts';
import { PAYLOAD_TTL_MS } from '../protocol/job-context.ts';
import { mergeConstraints } from '../kernel/constraints.ts';
import { JobStatus, resultPtr, type JobRequest } from '../protocol/cap.ts';
import { digestOf } from '../protocol/digest.ts';
import { ulid } from '../protocol/ulid.ts';
import { RpcErrorCode, type JsonRpcErrorObject } from '../protocol/jsonrpc.ts';
import type { CallToolResult } from '../protocol/mcp.ts';
import { asGatewayError, GatewayError, type ErrorCode } from '../errors.ts';
import { CallLimits } from '../enforcement/call-limits.ts';
import { recordedInput, type RecordArguments } from '../audit/recorded-input.ts';
import type { RefusalDetail } from '../enforcement/refusal.ts';
import { verdictOf, type ConstraintRefusal } from '../kernel/verdict.ts';
import type { CatalogEntry, ToolCatalog } from './catalog.ts';
import type { CallOutcome, ClientFacts, InputRequiredResult, NormalizedCall, ReplyChannel } from '../protocol/call.ts';
import { RelayedInput } from './relayed-input.ts';
import { errorResult, withJobMeta } from '../protocol/tool-results.ts';
import { decisionInputOf, isIdempotent, jobRequestOf } from './job-request.ts';
import { answerInputRequests, MAX_INPUT_ROUNDS } from '../scheduler/input-rounds.ts';
import { ApprovalGate, type GateOutcome } from '../approvals/channels/gate.ts';
import type { RequestStateCodec } from '../approvals/channels/request-state.ts';
import { CallTiming } from './call-timing.ts';
import type { Span, Tracer } from '@opentelemetry/api';
import { noTracing } from '../ports.ts';
import { traceIdOfSpan, withTraceContext } from '../protocol/trace-context.ts';
import { callLogFields } from '../scheduler/job-log-fields.ts';
import { CallTrace, endStage, failureOf } from './call-trace.ts';
import { SessionTracker, type TrackedCall } from '../session/session-tracker.ts';
import type { SessionView } from '../kernel/decision.ts';
import { checkResult, labelsAt, resultIsWatched, withLabelSources } from './result-check.ts';
import { declaresTasks, requiresTask, withoutTasks } from '../protocol/tasks-extension.ts';
import type { SessionLabel } from '../protocol/session-record.ts';

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
   * How long the kernel may take to decide (ms, default 50). A slower decision is thrown away and made once more;
   * if that one is slow too the call is denied with GH_ERR_KERNEL_UNAVAILABLE (fail closed), as is a kernel that throws.
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
  /** Decided beside the kernel on every call and recorded in `job.decided`, never changing the outcome. */
  shadows?: ShadowPolicies;
  approvals: ApprovalService;
  scheduler: Scheduler;
  store: Store;
  audit: Pick<AuditTrail, 'accepting' | 'record'>;
  log: Logger;
  options: CallPipelineOptions;
  /** Times decisions and throttle windows; the system clock when not given. */
  clock?: Pick<Clock, 'now'>;
  /** Told how each call ended and how long its stages took; none when not given. */
  metrics?: Metrics;
  /** Where the spans of each call's stages go (decision, approval wait, dispatch); the no-op tracer when not given. */
  tracer?: Tracer;
  /** The session facts rules read and the loop breakers and budgets count in; without it, rules see an empty session and nothing is counted. */
  sessions?: SessionTracker;
  /** The upstreams whose calls run on the caller's behalf, and how their tokens are exchanged; none when not given. */
  tokenExchange?: CallerTokenExchange;
}

const wallClock: Pick<Clock, 'now'> = { now: () => Date.now() };

/**
 * A later round of a call whose upstream asked for input: the same job, the approval its first round consumed (which
 * covers the rounds after it), and what goes back to the upstream. Each round is decided, counted and recorded like
 * the first, and waits for its records at the dispatch barrier, for a client of either era.
 */
interface NextRound {
  jobId: string;
  /** 1 for the round after the first. */
  round: number;
  approvalId?: string;
  input?: JobContext['input'];
}

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
  private readonly limits: CallLimits;
  /** Where a call the policy puts before a human waits for one. */
  readonly approvalGate: ApprovalGate;
  /** An upstream's input requests, relayed to a 2026-07-28 client and resumed from its retry. */
  private readonly relayed: RelayedInput;

  constructor(private readonly deps: CallPipelineDeps) {
    this.clock = deps.clock ?? wallClock;
    this.limits = new CallLimits(deps.store, this.clock, deps.log);
    const { options } = deps;
    this.relayed = new RelayedInput(deps.store, () => options.requestStates?.());
    this.approvalGate = new ApprovalGate({
      approvals: deps.approvals,
      steps: deps.scheduler.steps,
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
    const metrics = this.deps.metrics;
    const timing = metrics?.enabled ? new CallTiming(metrics) : undefined;
    const running = this.run(call, target, timing);
    this.running.add(running);
    const forget = () => void this.running.delete(running);
    running.then(timing ? (outcome) => (timing.ended(outcome), forget()) : forget, forget);
    return running;
  }

  /** Resolves once no call is in progress, counting those that start meanwhile. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled(this.running);
  }

  private async run(call: NormalizedCall, target: CatalogEntry | undefined, timing: CallTiming | undefined, next?: NextRound): Promise<CallOutcome> {
    const { catalog, kernel } = this.deps;
    const { steps } = this.deps.scheduler;
    const spans = new CallTrace(this.deps.tracer ?? noTracing.tracer, call.reply.trace, call.meta);
    let entry = target ?? catalog.resolve(call.name);
    if (!entry || entry.facts.definitionChanged) {
      // An operator may have accepted (or rejected) a changed tool since, in another process: the CLI, another replica.
      await catalog.recheck(call.name);
      entry = catalog.resolve(call.name);
    }
    if (!entry) {
      const down = catalog.unavailable(call.name);
      if (down) return { result: down };
      return { error: { code: RpcErrorCode.INVALID_PARAMS, message: `Unknown tool: ${call.name}`, data: { code: 'GH_ERR_UNKNOWN_TOOL', tool: call.name } } };
    }
    if (timing) {
      timing.upstream = entry.server;
      timing.tool = entry.tool.name;
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
    // A retry after the upstream asked for input is the same job, once its state is shown to be for this call.
    const relay = resumed && 'relay' in resumed ? resumed.relay : undefined;
    const argsDigest = digestOf(call.arguments);
    let round = next;
    if (relay) {
      const refused = await this.relayed.refusal(relay, call, entry, argsDigest);
      if (refused) return { error: refused };
      round = { jobId: relay.jobId, round: relay.round, ...(relay.approvalId !== undefined ? { approvalId: relay.approvalId } : {}), input: this.relayed.forwarded(relay, call.input?.inputResponses) };
    }

    const job = jobRequestOf(round?.jobId ?? ulid(), call, entry);
    // The round rides in the job message, so that its executor claims this round and runs it only with this round's context.
    if (round) job.stepIndex = round.round;
    const { jobId } = job;
    steps.submit(job, {
      argsDigest,
      toolDigest: entry.digest,
      ...(entry.request ? { method: entry.request.method } : {}),
      ...(call.caller.sessionId ? { session: call.caller.sessionId } : {}),
      ...(call.client ? { client: clientOf(call.client) } : {}),
      ...(spans.traceparent ? { traceparent: spans.traceparent } : {}),
      ...(round ? { round: round.round } : {}),
    });

    // Only a policy that needs session state pays for it; only a call some rule of its tool (or a shadow) reads `session` for waits for the facts.
    const { sessions, shadows } = this.deps;
    const shadowsRead = shadows?.readsSession === true;
    const tracked = sessions && (kernel.usesSession || shadowsRead) ? sessions.track(call, this.clock.now()) : undefined;
    const readsSession = tracked !== undefined && (shadowsRead || kernel.readsSessionFor(job.labels['mcp.server'], job.meta.capability, entry.request && { kind: entry.request.kind, target: entry.request.target }));
    let session: SessionView | undefined;
    let labelled: readonly SessionLabel[] = [];
    if (readsSession) {
      try {
        ({ view: session, labels: labelled } = await sessions!.view(tracked, call, this.clock.now()));
      } catch (err) {
        const error = asGatewayError(err);
        this.deps.log.error('could not read the session facts; denying (fail closed)', { ...callLogFields(call, jobId), code: error.code, error: error.message });
        return this.refuse(jobId, { jobId }, error.code, `The session's facts could not be read, so the call did not run: ${error.message}`, undefined);
      }
    }

    const now = this.clock.now();
    const input = decisionInputOf(job, entry, call.arguments, now);
    if (session) input.session = session;
    let decision: Decision;
    const deciding = timing && performance.now();
    const decideSpan = spans.child('gatehouse.decide');
    const budgetMs = this.deps.options.decisionBudgetMs ?? DEFAULT_DECISION_BUDGET_MS;
    try {
      decision = kernel.decide(input);
      const tookMs = this.clock.now() - now;
      // A first decision can pay for cold work (the tool's plan built, its conditions run for the first time) or for
      // being descheduled on a loaded machine. Decided again on the same input, the same function gives the same
      // decision; only a kernel slow twice over is denied.
      if (tookMs > budgetMs) {
        const again = this.clock.now();
        decision = kernel.decide(input);
        const tookAgainMs = this.clock.now() - again;
        if (tookAgainMs > budgetMs) {
          endStage(decideSpan, { type: 'GH_ERR_KERNEL_UNAVAILABLE', message: 'over its decision budget' });
          return this.kernelUnavailable(call, jobId, `the decision took ${tookMs} ms and again ${tookAgainMs} ms, over its ${budgetMs} ms budget`);
        }
        this.deps.log.warn('a decision overran its budget and was made again within it', { ...callLogFields(call, jobId), tookMs, tookAgainMs, budgetMs });
      }
    } catch (err) {
      endStage(decideSpan, { type: 'GH_ERR_KERNEL_UNAVAILABLE' });
      return this.kernelUnavailable(call, jobId, `the kernel failed: ${String((err as Error)?.message ?? err).slice(0, 200)}`);
    }
    if (timing) timing.decided(decision.effect, deciding!);
    // An approver is shown why the session is where it is: which earlier calls set its labels.
    if (decision.effect === 'require_approval' && labelled.length > 0) decision = { ...decision, reason: withLabelSources(decision.reason, labelled) };
    spans.decided(decideSpan, jobId, decision);
    endStage(decideSpan);
    // The constraints on the arguments, checked before anyone is asked (and again by the executor); outside the
    // decision's budget, since they read every argument.
    const { refusal } = verdictOf(input, decision);
    // `input` is what `policy replay` re-decides on: keep its shape (a DecisionInput, arguments as `audit.recordArguments` says).
    // Keys in JCS order, as job.submitted's.
    const decided: Record<string, unknown> = { effect: decision.effect, input: recordedInput(input, decision.constraints.redact?.args, this.deps.options.recordArguments ?? 'redacted'), policySnapshot: decision.policySnapshot, reason: decision.reason, ruleIds: decision.ruleIds };
    if (decision.errors?.length) decided.errors = decision.errors;
    if (refusal) decided.refusal = { code: refusal.code, ...refusalDetail(refusal) };
    const shadow = shadows?.decide(input);
    if (shadow) decided.shadow = shadow;
    steps.decided(jobId, decided);
    const jobMeta = { jobId, decision: decision.effect, ruleIds: decision.ruleIds, policySnapshot: decision.policySnapshot };

    if (decision.effect === 'deny') {
      steps.deny(jobId, 'kernel', { ruleIds: decision.ruleIds });
      const { reason, remediation } = decision;
      return {
        result: errorResult('GH_ERR_POLICY_DENIED', `Denied by policy: ${reason.replace(/[.\s]+$/, '')}.${remediation ? ` ${remediation}` : ''}${failedConditions(decision)}`, { 'gatehouse/job': jobMeta }, remediation ? { remediation } : undefined),
      };
    }

    // A call that could never run is refused now, whatever the decision: nobody is asked, nothing is counted.
    if (refusal) return this.refuse(jobId, jobMeta, refusal.code, refusal.message, refusalDetail(refusal));
    if (this.deps.tokenExchange?.needs(entry.server) && !call.reply.accessToken) {
      const message = `${entry.server} takes calls only on a caller's behalf (token exchange): call it with an OAuth access token from ${'`auth.oauth`'}'s issuer, not an API key`;
      return this.refuse(jobId, jobMeta, 'GH_ERR_CALLER_TOKEN_REQUIRED', message, undefined, message);
    }
    // A call held for a human uses up nothing, but one its limits would refuse is not held (a peek, not a count).
    if (decision.effect === 'require_approval' && call.executeFor === undefined && CallLimits.apply(decision)) {
      const refused = await this.limits.count('peek', decision, call.caller, entry.id, () => callLogFields(call, jobId));
      if (refused) return this.refuse(jobId, jobMeta, refused.code, refused.message, refused.data as RefusalDetail | undefined, refused.message);
    }
    if (decision.effect === 'require_approval' && call.executeFor === undefined && tracked && (decision.repeats || decision.budgets)) {
      const refused = await sessions!.admit('peek', tracked, decision, call, { tool: input.tool, toolCall: !input.kind, argsDigest, riskTags: [], approved: false, now }, () => callLogFields(call, jobId));
      if (refused) return this.refuse(jobId, jobMeta, refused.code, refused.message, refused.data as RefusalDetail | undefined, refused.message);
    }

    // A call the gateway runs on approval passes the gate whatever the policy now says, so its claim is taken.
    let runsOnApproval: ApprovalRecord | undefined;
    let edit: ApprovalEdit | undefined;
    /** The rules the approval that carries `edit` answered. */
    let approvedRules: readonly string[] = [];
    /** The approval this job consumed, which covers the later rounds of a call whose upstream asks for input. */
    let consumed: string | undefined;
    if (decision.effect === 'require_approval' || call.executeFor !== undefined) {
      let gate: GateOutcome;
      const gating = timing && performance.now();
      const approvalSpan = spans.child('gatehouse.approval');
      try {
        const req = { call, entry, jobId, argsDigest, decision, ...(resumed && 'state' in resumed ? { resumed: resumed.state } : {}) };
        gate = (round?.approvalId !== undefined ? await this.approvalGate.continueRound(req, round.approvalId) : undefined) ?? (await this.approvalGate.pass(req));
        if (timing) timing.gated(gating!, gate.kind === 'run' ? gate.approval : undefined);
        if (approvalSpan.isRecording()) approvalSpan.setAttributes({ 'gatehouse.approval.outcome': gate.kind, ...('approval' in gate && gate.approval ? { 'gatehouse.approval.id': gate.approval.id, 'gatehouse.approval.state': gate.approval.state } : {}) });
        endStage(approvalSpan);
      } catch (err) {
        // The approvals could not be read or written: nobody can have approved this call, so it does not run.
        const error = asGatewayError(err);
        endStage(approvalSpan, { type: error.code, message: error.message });
        this.deps.log.error('approval handling failed; denying (fail closed)', { ...callLogFields(call, jobId), code: error.code, error: error.message });
        steps.deny(jobId, 'approvals', { errorCode: error.code });
        return { result: errorResult(error.code, `The approval for this call could not be handled, so it did not run: ${error.message}`, { 'gatehouse/job': jobMeta }) };
      }
      if (gate.kind === 'input_required') {
        steps.park(jobId); // the retry of the call is a job of its own
        return { inputRequired: gate.result };
      }
      if (gate.kind === 'answer') {
        if (gate.ended) steps.endByApproval(jobId, gate.ended, { approvalId: gate.approval.id, approval: gate.approval.state });
        else steps.park(jobId);
        return { result: withJobMeta(gate.result, { ...jobMeta, approvalId: gate.approval.id }) };
      }
      Object.assign(jobMeta, gate.approval.grant ? { approvalId: gate.approval.grant.approvalId, grantId: gate.approval.id } : { approvalId: gate.approval.id });
      if (gate.execution) runsOnApproval = gate.approval;
      else if (!gate.approval.grant) consumed = gate.approval.id;
      edit = gate.approval.grant ? undefined : gate.approval.edit;
      approvedRules = gate.approval.ruleIds;
    }

    // Edit, then approve: the approved call runs with the approver's arguments, if the schema and the policy take them.
    const original = call.arguments;
    if (edit) {
      const edited = editedCall(kernel, entry, job, original, edit, this.clock.now(), { ...(session ? { session } : {}), approvedRules });
      const editedArgsDigest = 'args' in edited ? digestOf(edited.args) : undefined;
      // The decision the edited call runs under, beside job.decided's (the call as the model sent it).
      const decided = 'decision' in edited ? { effect: edited.decision.effect, ruleIds: edited.decision.ruleIds, policySnapshot: edited.decision.policySnapshot } : {};
      steps.note(jobId, 'job.arguments_edited', edit.by, { approvalId: (jobMeta as Record<string, unknown>).approvalId, argsDigest, ...(editedArgsDigest ? { editedArgsDigest } : {}), changed: Object.keys(edit.changes), ...decided });
      Object.assign(jobMeta, { edited: { by: edit.by, changed: Object.keys(edit.changes), ...(editedArgsDigest ? { argsDigest: editedArgsDigest } : {}) } });
      if ('code' in edited) {
        const refused = errorResult(edited.code, edited.message, { 'gatehouse/job': jobMeta });
        steps.deny(jobId, 'enforcement', { errorCode: edited.code, reason: edited.message });
        return this.refuseApproved(runsOnApproval, { result: refused });
      }
      call = { ...call, arguments: edited.args };
      decision = edited.decision;
    }

    // Counted after the approval gate, right before dispatch, so that a call held for a human uses up nothing.
    if (CallLimits.apply(decision)) {
      const refused = await this.limits.count('take', decision, call.caller, entry.id, () => callLogFields(call, jobId));
      if (refused) return this.refuseApproved(runsOnApproval, this.refuse(jobId, jobMeta, refused.code, refused.message, refused.data as RefusalDetail | undefined, refused.message));
    }

    // Counted last, so that the session counts only calls that run: its loop breakers and budgets check and count in one step.
    const riskTags = tracked || decision.scanResult ? kernel.riskTagsOf(input) : [];
    if (tracked) {
      const countedAt = this.clock.now();
      // The rules' `labels`: set with the count, before the call runs, so that no later call is decided without them (fail closed).
      const running = { tool: input.tool, toolCall: !input.kind, argsDigest, riskTags, approved: 'approvalId' in jobMeta, now: countedAt, labels: labelsAt(decision, 'run', jobId, countedAt) };
      const refused = await sessions!.admit('take', tracked, decision, call, running, () => callLogFields(call, jobId));
      if (refused) return this.refuseApproved(runsOnApproval, this.refuse(jobId, jobMeta, refused.code, refused.message, refused.data as RefusalDetail | undefined, refused.message));
    }

    const dispatched = this.clock.now();
    const rounds: Pick<JobContext, 'round' | 'input'> = round ? { round: round.round, ...(round.input ? { input: round.input } : {}) } : {};
    // A task's result reaches the client later, through tasks/get, past every check made here on a call's result: a
    // call whose result is constrained, scanned, labelled, counted or noted is sent without the tasks extension, so
    // the upstream answers it whole.
    const answeredWhole = call.client && declaresTasks(call.client.capabilities) && resultIsWatched(decision, tracked !== undefined, edit !== undefined);
    const sent = answeredWhole ? { ...call, client: { ...call.client!, capabilities: withoutTasks(call.client!.capabilities) } } : call;
    const dispatchedOutcome = await spans.stage('gatehouse.dispatch', (span) => this.dispatch(sent, entry, job, decision, jobMeta, timing, span, rounds), failureOf);
    if ('inputRequired' in dispatchedOutcome) {
      const approvalId = consumed ?? round?.approvalId;
      const after: NextRound = { jobId, round: (round?.round ?? 0) + 1, ...(approvalId !== undefined ? { approvalId } : {}) };
      // A 2026-07-28 client answers an upstream's input requests itself; a task or a call nobody made cannot.
      if (call.client?.era === 'modern' && (!call.task || call.task.relaysInput) && call.executeFor === undefined) return this.relayInput(job, jobMeta, dispatchedOutcome.inputRequired, call, entry, argsDigest, after);
      const answered = await this.answerInput(job, jobMeta, dispatchedOutcome.inputRequired, call, target, timing, after);
      if (runsOnApproval && !('inputRequired' in answered)) await this.approvalGate.recordExecution(runsOnApproval, answered);
      return answered;
    }
    let outcome: { result: CallToolResult } | { error: JsonRpcErrorObject } = dispatchedOutcome;
    if (answeredWhole && 'error' in outcome && requiresTask(outcome.error)) {
      const message = 'This tool runs only as a task, and a task\'s result would reach you past the checks the policy puts on this call\'s result (constraints, scanning, labels or budgets), so the call cannot run here.';
      outcome = { result: errorResult('GH_ERR_ERA_UNTRANSLATABLE', message, { 'gatehouse/job': jobMeta }) };
    }
    if ('result' in outcome && (decision.scanResult || decision.labels)) {
      const checked = { jobId, tenant: input.tenant, decision, tracked, riskTags, now: this.clock.now() };
      outcome = { result: await checkResult({ audit: this.deps.audit, log: this.deps.log, sessions }, checked, outcome.result) };
    }
    // The note on an edit is Gatehouse's own text, added after the upstream's result was scanned.
    if (edit && 'result' in outcome) outcome = { result: withEditNote(outcome.result, original, edit) };
    if (tracked && SessionTracker.countsResults(decision)) {
      const ended = this.clock.now();
      await sessions!.resultCame(tracked, decision, 'result' in outcome ? outcome.result : { content: [] }, ended - dispatched, ended, () => callLogFields(call, jobId));
    }
    if (runsOnApproval) await this.approvalGate.recordExecution(runsOnApproval, outcome);
    return outcome;
  }

  /**
   * How an upstream's request during the call reaches the client: a 2025 session is asked (each request audited on
   * the job); a 2026-07-28 client cannot be asked mid-call, which the upstream hears as GH_ERR_ERA_UNTRANSLATABLE.
   */
  private askFor(call: NormalizedCall, jobId: string): ServerRequestHandler | undefined {
    const { ask } = call.reply;
    if (ask) {
      return (method, params, signal) => {
        this.deps.scheduler.steps.note(jobId, 'job.input_requested', 'upstream', { method });
        return ask(method, params, signal);
      };
    }
    if (call.client?.era !== 'modern') return undefined;
    return (method) => {
      const message = `the client speaks MCP 2026-07-28, which has no ${method} request during a call (a 2025 upstream's request cannot be relayed)`;
      return Promise.reject(new GatewayError('GH_ERR_ERA_UNTRANSLATABLE', message, { data: { rpcError: { code: RpcErrorCode.METHOD_NOT_FOUND, message, data: { code: 'GH_ERR_ERA_UNTRANSLATABLE' } } } }));
    };
  }

  /** The upstream asks the client for input: relayed to it (2026-07-28) with Gatehouse's state, the round audited. */
  private async relayInput(job: JobRequest, jobMeta: Record<string, unknown>, asked: InputRequiredResult, call: NormalizedCall, entry: CatalogEntry, argsDigest: string, next: NextRound): Promise<CallOutcome> {
    if (next.round > MAX_INPUT_ROUNDS) return tooManyRounds(jobMeta);
    const { input: _none, ...round } = next;
    const relayed = await this.relayed.relay(asked, call, entry, argsDigest, round, this.clock.now());
    if ('missing' in relayed) {
      const message = `The upstream asked for ${relayed.missing}, which this client declared no capability for, so the call cannot go on.`;
      return { result: errorResult('GH_ERR_ERA_UNTRANSLATABLE', message, { 'gatehouse/job': jobMeta }) };
    }
    // The retry is the same job's next round, with a claim of its own (idempotency.ts): this round's stays taken.
    this.deps.scheduler.steps.inputRequired(job, { round: next.round, methods: methodsOf(asked) });
    return { inputRequired: relayed };
  }

  /**
   * The upstream asks for input, and the client is not relayed it (2025, or a task): it is asked on its session, then
   * the next round runs through the whole path again as the same job (decided under the policy of the moment, as a
   * 2026-07-28 client's retry is), its record of the round written before anything reaches the upstream.
   */
  private async answerInput(job: JobRequest, jobMeta: Record<string, unknown>, asked: InputRequiredResult, call: NormalizedCall, target: CatalogEntry | undefined, timing: CallTiming | undefined, next: NextRound): Promise<CallOutcome> {
    if (next.round > MAX_INPUT_ROUNDS) return tooManyRounds(jobMeta);
    this.deps.scheduler.steps.inputRequired(job, { round: next.round, methods: methodsOf(asked) });
    let input: JobContext['input'];
    try {
      input = await answerInputRequests(asked, this.askFor(call, job.jobId), call.reply.signal);
    } catch (err) {
      const error = asGatewayError(err);
      return { result: errorResult(error.code, `The upstream asked for input this call could not give: ${error.message}`, { 'gatehouse/job': jobMeta }) };
    }
    return this.run(call, target, timing, { ...next, input });
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

  /**
   * A call the gateway was running on approval (`onApprove: execute`) and refused after claiming it: the refusal is
   * its execution's outcome, handed to the retry, so that the approval never looks as if it were still running.
   */
  private async refuseApproved(runsOnApproval: ApprovalRecord | undefined, refused: { result: CallToolResult }): Promise<CallOutcome> {
    if (runsOnApproval) await this.approvalGate.recordExecution(runsOnApproval, refused);
    return refused;
  }

  private kernelUnavailable(call: NormalizedCall, jobId: string, reason: string): CallOutcome {
    this.deps.log.error('the kernel could not decide; denying (fail closed)', { ...callLogFields(call, jobId), reason });
    this.deps.scheduler.steps.deny(jobId, 'kernel', { errorCode: 'GH_ERR_KERNEL_UNAVAILABLE', reason });
    return { result: errorResult('GH_ERR_KERNEL_UNAVAILABLE', `The safety kernel could not decide on this call (${reason}), so it was denied. Try again later.`) };
  }

  /**
   * A call refused by an enforced constraint or limit: it ends DENIED, audited with the constraint's code and
   * detail (and `reason` where the message quotes no argument value).
   */
  private refuse(jobId: string, jobMeta: Record<string, unknown>, code: ErrorCode, message: string, detail: RefusalDetail | undefined, reason?: string): { result: CallToolResult } {
    this.deps.scheduler.steps.deny(jobId, 'enforcement', { errorCode: code, ...(reason ? { reason } : {}), ...detail });
    return { result: errorResult(code, message, { 'gatehouse/job': jobMeta }, detail) };
  }

  private async dispatch(
    call: NormalizedCall,
    entry: CatalogEntry,
    job: JobRequest,
    decision: Decision,
    jobMeta: Record<string, unknown>,
    timing: CallTiming | undefined,
    span: Span,
    rounds: Pick<JobContext, 'round' | 'input'>,
  ): Promise<{ result: CallToolResult } | { error: JsonRpcErrorObject } | { inputRequired: InputRequiredResult }> {
    const { store, scheduler, options } = this.deps;
    const answered = entry.request?.answered;
    if (answered) {
      scheduler.steps.answerWithoutUpstream(job.jobId, { upstream: 'not asked: it already holds what was requested' });
      return { result: withJobMeta(answered as CallToolResult, jobMeta) };
    }
    const { jobId } = job;
    const constraints = mergeConstraints(decision.constraints, { timeoutMs: options.upstreamTimeoutMs(entry.server) });
    if (constraints.timeoutMs) job.budget = { deadlineMs: constraints.timeoutMs };
    // The executor's span (here or on a worker) continues the dispatch's: its traceparent rides in the stored `_meta`.
    const meta = withTraceContext(call.meta, span);
    const context: JobContext = {
      server: entry.server,
      tool: entry.tool.name,
      arguments: call.arguments,
      constraints,
      ...(meta ? { meta } : {}),
      wantsProgress: call.reply.progressToken !== undefined,
      ...(entry.request ? { request: { method: entry.request.method, params: entry.request.params } } : {}),
      ...(call.client ? { clientCapabilities: call.client.capabilities } : {}),
      ...rounds,
    };
    // Written while the job's records are (the scheduler sends the job once both are): one wait, not two.
    const contextStored = store.set(job.contextPtr, context, { ttlMs: PAYLOAD_TTL_MS });
    contextStored.catch(() => undefined); // the scheduler ends the job on it; a job that never got that far has nothing to end
    const { accessToken } = call.reply;
    const credential = accessToken && this.deps.tokenExchange?.needs(entry.server) ? this.deps.tokenExchange.credential(entry.server, accessToken) : undefined;
    this.links.set(jobId, { ask: this.askFor(call, jobId), notify: (method, params) => call.reply.notify(method, params ?? {}), ...(credential ? { credential } : {}) });
    const progressToken = call.reply.progressToken;
    let collected = false;
    const dispatching = timing && performance.now();
    try {
      const result = await scheduler.run(job, {
        ...options.placement(entry.server),
        idempotent: isIdempotent(entry),
        context,
        stored: contextStored,
        traceId: traceIdOfSpan(span),
        signal: call.reply.signal,
        onProgress: progressToken === undefined ? undefined : (update) => call.reply.notify('notifications/progress', { progressToken, ...update }),
      });
      if (timing) timing.dispatched(dispatching!);
      // The result read, and both payload pointers dropped, in one store operation.
      const stored = await store.take<StoredResult>(resultPtr(jobId), [job.contextPtr]);
      collected = true;
      if (stored && 'rpcError' in stored) return { error: stored.rpcError };
      if (stored && 'inputRequired' in stored) return { inputRequired: stored.inputRequired };
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
      // Left behind only when the result could not be collected: they expire with their TTL otherwise.
      // (After the context's write has settled, so that a write still in flight does not land after its delete.)
      if (!collected) void contextStored.catch(() => undefined).then(() => Promise.all([job.contextPtr, resultPtr(jobId)].map((key) => store.delete(key).catch(() => undefined))));
    }
  }
}

/** An upstream that keeps asking ends the call, so one approval cannot send the same call to it without end. */
function tooManyRounds(jobMeta: Record<string, unknown>): CallOutcome {
  return { result: errorResult('GH_ERR_ERA_UNTRANSLATABLE', `The upstream asked for input more than ${MAX_INPUT_ROUNDS} times in one call, so the call ends here.`, { 'gatehouse/job': jobMeta }) };
}

const methodsOf = (asked: InputRequiredResult): string[] => Object.values(asked.inputRequests ?? {}).map((r) => r.method);

/**
 * Why a deny rule matched on a condition that threw (a relative path, a missing key): the model can act on that,
 * and would not guess it from the rule's reason alone. Empty when every deciding rule's condition held.
 */
function failedConditions(decision: Decision): string {
  const failed = decision.errors?.filter((e) => decision.ruleIds.includes(e.ruleId));
  if (!failed?.length) return '';
  return ` (The condition of ${failed.map((e) => `rule ${e.ruleId} failed on these arguments: ${e.error.replace(/[.\s]+$/, '')}`).join('; ')}; a condition that fails counts as a match for deny.)`;
}

/** What the audit trail keeps of a refusal: which constraint and argument, not the message, which quotes the value. */
function refusalDetail({ ruleId, argument }: ConstraintRefusal): RefusalDetail {
  return { ...(ruleId ? { ruleId } : {}), ...(argument ? { argument } : {}) };
}

/** What `job.submitted` records of the client: who it says it is, and the era it speaks. */
function clientOf(client: ClientFacts): { name?: string; version?: string; era: string } {
  return { era: client.era, ...(client.name ? { name: client.name } : {}), ...(client.version ? { version: client.version } : {}) }; // JCS order, as job.submitted's
}
