import { jobLogFields } from './job-log-fields.ts';
import type { Bus, Clock, ProgressUpdate, ServerRequestHandler, Store, Subscription, Upstream, UpstreamCredential } from '../ports.ts';
import { CAP_PROTOCOL_VERSION, contextPtr, isReplySubject, JobStatus, resultPtr, Subjects, type BusPacket, type JobRequest, type JobResult } from '../protocol/cap.ts';
import type { CallToolResult } from '../protocol/mcp.ts';
import type { InputRequiredResult } from '../protocol/call.ts';
import { isInputRequired } from './input-rounds.ts';
import { asGatewayError, GatewayError, type ErrorCode } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { constrainsArguments, enforceArguments } from '../enforcement/call-arguments.ts';
import { redactResult, redactValue } from '../enforcement/redact.ts';
import { isRefusal, type RefusalDetail } from '../enforcement/refusal.ts';
import { PAYLOAD_TTL_MS, type JobContext } from '../protocol/job-context.ts';
import { limitOutput } from '../enforcement/output-limit.ts';
import { sizedDigestOf } from '../protocol/digest.ts';
import { claimKey, isIdempotentJob } from './idempotency.ts';
import { SpanKind, SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import { noTracing } from '../ports.ts';
import { parentContextOf, withTraceContext, type TraceCarrier } from '../protocol/trace-context.ts';

/** The way back to the client that made a job's call, for what an upstream sends while serving it. */
export interface JobClientLink {
  ask?: ServerRequestHandler;
  notify(method: string, params: Record<string, unknown> | undefined): void;
  /**
   * The job's upstream token on its caller's behalf (token exchange), obtained where the call was decided; set
   * only for an upstream that acts for callers. It lives with the job in memory: never in its context or packet.
   */
  credential?: UpstreamCredential;
}

export interface ExecutorOptions {
  /**
   * Jobs run at once (a worker's `workers.maxParallelJobs`); the rest wait here in arrival order, and a cancel
   * ends a waiting job without running it. Default: no limit (embedded mode).
   */
  maxParallel?: number;
  /**
   * Tell the dispatching gateway at once that a job arrived (a progress packet with status DISPATCHED): core NATS
   * drops a job sent while this worker is not subscribed (reconnecting), and only the missing receipt shows it.
   */
  acknowledge?: boolean;
  /** Where a result that could not be published is reported. */
  log?: Logger;
  /** Where the span of each upstream call goes; the no-op tracer when not given. */
  tracer?: Tracer;
}

type RpcError = { code: number; message: string; data?: unknown };

/** A job here, running or queued: how to stop it, which round of it, and its run (settled once its result is out). */
interface RunningJob {
  controller: AbortController;
  round: number;
  done: Promise<void>;
}

/**
 * What the executor stores at `res:<job_id>`: the (constrained) result, the upstream's own JSON-RPC error, or
 * why the call was refused before it reached the upstream.
 */
export type StoredResult =
  | { result: CallToolResult; truncated: boolean }
  | { rpcError: RpcError }
  | { refusal: { code: ErrorCode; message: string; detail: RefusalDetail } }
  /** The upstream asks the client for input (2026-07-28): the call relays it, or asks, then sends the next round. */
  | { inputRequired: InputRequiredResult };

/**
 * Runs jobs against upstream MCP servers with their constraints enforced here, not handed to the upstream as
 * hints: argument size, paths and egress before the upstream sees the call (a refused call never reaches it);
 * the timeout (restarted by progress); redaction and the output cap on the result before it is stored; and
 * cancellation from `sys.job.cancel`. It takes jobs from `job.<pool>` as a queue member, so in distributed mode
 * a worker process hosts the same code and enforces the same constraints.
 */
export class Executor {
  /** Running and queued jobs, by id: a cancel reaches both. */
  private readonly jobs = new Map<string, RunningJob>();
  private readonly jobSubscriptions: Subscription[] = [];
  private cancelSubscription: Subscription | undefined;
  private readonly maxParallel: number;
  private readonly acknowledge: boolean;
  private readonly log: Logger;
  private readonly tracer: Tracer;
  private runningCount = 0;
  /** Queued jobs waiting for a slot, oldest first: each is handed the slot of a job that ends. */
  private readonly queue: Array<() => void> = [];

  constructor(
    private readonly bus: Bus,
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly workerId: string,
    private readonly upstreamFor: (server: string) => Upstream | undefined,
    /**
     * Where server→client requests (elicitation, sampling, roots) and logging for a job go: the client that called,
     * held by `replica` (the sender of the job's packet).
     */
    private readonly clientFor: (jobId: string, replica: string) => JobClientLink | undefined = () => undefined,
    options: ExecutorOptions = {},
  ) {
    this.maxParallel = options.maxParallel ?? Number.POSITIVE_INFINITY;
    this.acknowledge = options.acknowledge ?? false;
    this.log = options.log ?? silentLogger;
    this.tracer = options.tracer ?? noTracing.tracer;
  }

  serve(pool: string): void {
    this.takeCancels();
    this.jobSubscriptions.push(
      this.bus.subscribe(
        Subjects.pool(pool),
        (packet) => {
          // Returned, so a durable bus acknowledges the job only once its result is out.
          if (packet.payload.kind === 'jobRequest') return this.execute(packet.payload.jobRequest, packet.senderId, packet.traceId);
        },
        { queue: `executors.${pool}` },
      ),
    );
  }

  /** Also takes jobs sent to this worker alone (`worker.<id>.jobs`): a gateway picked it as the least loaded. */
  serveDirect(): void {
    this.takeCancels();
    this.jobSubscriptions.push(
      this.bus.subscribe(Subjects.worker(this.workerId), (packet) => {
        if (packet.payload.kind === 'jobRequest') return this.execute(packet.payload.jobRequest, packet.senderId, packet.traceId);
      }),
    );
  }

  /** Jobs here now, running or queued: a worker's heartbeat reports it. */
  get activeJobs(): number {
    return this.jobs.size;
  }

  stop(): void {
    for (const s of this.jobSubscriptions.splice(0)) s.unsubscribe();
    this.cancelSubscription?.unsubscribe();
    this.cancelSubscription = undefined;
    for (const { controller } of this.jobs.values()) controller.abort('the executor is stopping');
  }

  /**
   * Takes no more jobs, lets those here finish for up to `graceMs`, then stops the rest. Cancels still reach them
   * meanwhile: their callers may give up on them.
   */
  async drain(graceMs: number): Promise<void> {
    for (const s of this.jobSubscriptions.splice(0)) s.unsubscribe();
    const until = this.clock.now() + graceMs;
    while (this.jobs.size > 0 && this.clock.now() < until) await this.clock.sleep(50);
    this.stop();
  }

  private takeCancels(): void {
    this.cancelSubscription ??= this.bus.subscribe(Subjects.cancel, (packet) => {
      if (packet.payload.kind === 'jobCancel') this.jobs.get(packet.payload.jobCancel.jobId)?.controller.abort(packet.payload.jobCancel.reason);
    });
  }

  /**
   * Runs a job; the same round again while it runs here (a resend after a late receipt, a redelivery) is answered by
   * the run in progress: acknowledged again, so the gateway stops resending, and settled with it, so a durable bus
   * delivers it again if that run's result cannot be published. Run twice, even an idempotent tool would write twice.
   */
  private execute(job: JobRequest, replica: string, traceId: string): Promise<void> {
    const round = job.stepIndex ?? 0;
    const running = this.jobs.get(job.jobId);
    if (running?.round === round) {
      if (this.acknowledge) void this.acknowledgeArrival(repliesOf(job), job.jobId);
      return running.done;
    }
    const entry: RunningJob = { controller: new AbortController(), round, done: Promise.resolve() };
    this.jobs.set(job.jobId, entry);
    return (entry.done = this.run(job, replica, traceId, entry));
  }

  private async run(job: JobRequest, replica: string, traceId: string, entry: RunningJob): Promise<void> {
    const started = this.clock.now();
    const replies = repliesOf(job);
    const { controller, round } = entry;
    let result: JobResult;
    let resultRules: readonly string[] | undefined;
    let holdsSlot = false;
    /** Whether the upstream answered: after that, the tool has run, whatever fails next. */
    let ran = false;
    /** Whether the upstream was sent this round: in a later round, the rounds before it ran, so its failure leaves the call in doubt. */
    let sent = false;
    let span: Span | undefined;
    try {
      // The claim is on the packet's job id, so the context must be that job's own: else any bus client could send
      // a fresh id pointing at another job's context and have that call run again.
      if (job.contextPtr !== contextPtr(job.jobId)) {
        throw new GatewayError('GH_ERR_WIRE_INVALID', `job ${job.jobId} points at context ${job.contextPtr}, not its own`);
      }
      if (this.acknowledge) void this.acknowledgeArrival(replies, job.jobId);
      await this.takeSlot(job.jobId, controller.signal);
      holdsSlot = true;
      // The claim and the context in one command: in distributed mode it is a Redis round trip on the call's path.
      const { claimed, value: context } = this.bus.local
        ? { claimed: true, value: await this.store.get<JobContext>(job.contextPtr) }
        : await this.store.claimAndGet<JobContext>(claimKey(job.jobId, round), this.workerId, job.contextPtr, { ttlMs: PAYLOAD_TTL_MS });
      // A late delivery of a round that ran already: the context is now a later round's (not yet past its dispatch
      // barrier, perhaps), or gone once the round's result was collected. It is dropped unanswered, since whoever
      // waits on this job id waits for another round's result.
      if (context ? (context.round ?? 0) !== round : !claimed) {
        this.log.warn('dropped a late delivery of a job round that already ran', { ...jobLogFields(job, traceId), round, ...(context ? { current: context.round ?? 0 } : {}) });
        return;
      }
      if (!claimed && !isIdempotentJob(job)) {
        throw new GatewayError('GH_ERR_EXECUTION_IN_DOUBT', `job ${job.jobId} was already taken by another executor, which may have run it; a tool that is not idempotent is not run twice`);
      }
      if (!context) throw asGatewayError(new Error(`the job context ${job.contextPtr} is gone`));
      const upstream = this.upstreamFor(context.server);
      if (!upstream) throw asGatewayError(new Error(`no upstream named ${context.server}`), 'GH_ERR_UPSTREAM_UNAVAILABLE');
      const { constraints } = context;
      if (constrainsArguments(constraints)) enforceArguments(context.arguments, constraints, upstream);
      if (constraints.redact?.result.length) resultRules = constraints.redact.result;
      const client = this.clientFor(job.jobId, replica);
      const { method, params } = context.request ? { method: context.request.method, params: { ...context.request.params } } : { method: 'tools/call', params: { name: context.tool, arguments: context.arguments } as Record<string, unknown> };
      // The MCP client span of the upstream call, under the dispatch's span (the traceparent kept in the context);
      // the upstream's own span continues it from `_meta` (and, over HTTP, the traceparent header).
      span = this.tracer.startSpan(context.request ? method : `${method} ${context.tool}`, { kind: SpanKind.CLIENT }, parentContextOf(context.meta as TraceCarrier | undefined));
      if (span.isRecording()) upstreamSpanAttributes(span, job, context, this.workerId);
      const meta = withTraceContext(context.meta, span);
      if (meta) params._meta = meta;
      const credential = upstream.actsForCaller ? await callerCredential(client, context.server) : undefined;
      if (context.input) Object.assign(params, context.input);
      const options = {
        ...(credential ? { credential } : {}),
        signal: controller.signal,
        timeoutMs: constraints.timeoutMs,
        // Best effort: progress lost while the bus is down is made up by the next update, or by the result.
        onProgress: context.wantsProgress
          ? (update: ProgressUpdate) => void this.publish(replies.progress, job.jobId, { kind: 'jobProgress', jobProgress: { jobId: job.jobId, ...update } }).catch(() => undefined)
          : undefined,
        onServerRequest: client?.ask,
        onNotification: client ? (method: string, params: Record<string, unknown> | undefined) => client.notify(method, params) : undefined,
        ...(context.clientCapabilities ? { clientCapabilities: context.clientCapabilities } : {}),
      };
      sent = true;
      const answer = await upstream.request(method, params, options);
      ran = true;
      const raw = answer as CallToolResult;
      // Redact before truncating: a cut could leave part of a secret that no pattern matches any more.
      // A resource's contents, a prompt's messages and a completion are not tool results: redacted whole, not cut.
      // Still asking: what it asks is kept whole, redacted but never cut.
      const stored: StoredResult = isInputRequired(answer)
        ? { inputRequired: resultRules ? redactValue(answer, resultRules) : answer }
        : context.request
          ? { result: resultRules ? redactValue(raw, resultRules) : raw, truncated: false }
          : limitOutput(resultRules ? redactResult(raw, resultRules) : raw, constraints.maxOutputBytes);
      await this.store.set(resultPtr(job.jobId), stored, { ttlMs: PAYLOAD_TTL_MS });
      const { digest, bytes } = sizedDigestOf('result' in stored ? stored.result : stored.inputRequired);
      result = { jobId: job.jobId, status: JobStatus.SUCCEEDED, resultPtr: resultPtr(job.jobId), resultDigest: digest, resultBytes: bytes, workerId: this.workerId, executionMs: this.clock.now() - started };
      if (raw.isError === true && span.isRecording()) {
        span.setAttribute('error.type', 'tool_error');
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
    } catch (err) {
      let error = asGatewayError(err);
      if (span?.isRecording()) {
        span.setAttribute('error.type', error.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      }
      // The tool ran but its result is lost: retrying would run it again, which only an idempotent tool allows.
      // (An upstream still asking for input that the client cannot give has completed nothing: that is not in doubt.)
      // A later round the upstream did not answer (it died, timed out) follows rounds that ran: in doubt too.
      if (!isIdempotentJob(job) && error.code !== 'GH_ERR_ERA_UNTRANSLATABLE') {
        if (ran) error = new GatewayError('GH_ERR_EXECUTION_IN_DOUBT', `job ${job.jobId} ran, but its result could not be kept (${error.message}); a tool that is not idempotent is not run twice`, { cause: err });
        else if (sent && round > 0 && error.code !== 'GH_ERR_CANCELLED') error = new GatewayError('GH_ERR_EXECUTION_IN_DOUBT', `round ${round} of job ${job.jobId} failed after the rounds before it ran (${error.message}); the tool may or may not have done its work, and a tool that is not idempotent is not run again`, { cause: err });
      }
      // The upstream's own error reaches the client too, so it is redacted like a result.
      if (resultRules && error.data?.rpcError) error = new GatewayError(error.code, redactValue(error.message, resultRules), { data: redactValue(error.data, resultRules) });
      const rpcError = error.data?.rpcError as RpcError | undefined;
      const refused = isRefusal(error);
      let stored: StoredResult | undefined = refused ? { refusal: { code: error.code, message: error.message, detail: { ...error.data } } } : rpcError ? { rpcError } : undefined;
      if (stored) {
        try {
          await this.store.set(resultPtr(job.jobId), stored, { ttlMs: PAYLOAD_TTL_MS });
        } catch {
          // The answer still goes out without its details: code and message travel in the result itself.
          stored = undefined;
        }
      }
      result = {
        jobId: job.jobId,
        // A refused call never reached its upstream: the policy denied it, at the last point it could.
        status: refused ? JobStatus.DENIED : error.code === 'GH_ERR_UPSTREAM_TIMEOUT' ? JobStatus.TIMEOUT : error.code === 'GH_ERR_CANCELLED' ? JobStatus.CANCELLED : JobStatus.FAILED,
        ...(stored ? { resultPtr: resultPtr(job.jobId) } : {}),
        workerId: this.workerId,
        executionMs: this.clock.now() - started,
        errorCode: error.code,
        errorMessage: error.message,
      };
    } finally {
      span?.end();
      if (this.jobs.get(job.jobId) === entry) this.jobs.delete(job.jobId);
      if (holdsSlot) this.releaseSlot();
    }
    try {
      await this.publish(replies.result, job.jobId, { kind: 'jobResult', jobResult: result });
    } catch (err) {
      // Rethrown, so a durable bus (JetStream) delivers the job again; its claim then keeps a tool that is not
      // idempotent from running twice.
      this.log.error('could not publish the result of a job', { ...jobLogFields(job, traceId), status: result.status, error: (err as Error).message });
      throw err;
    }
  }

  /** Waits, in arrival order, until fewer than `maxParallel` jobs run; a cancel ends the wait. */
  private takeSlot(jobId: string, signal: AbortSignal): Promise<void> {
    if (this.runningCount < this.maxParallel) {
      this.runningCount++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.queue.splice(this.queue.indexOf(admit), 1);
        reject(new GatewayError('GH_ERR_CANCELLED', `job ${jobId} was cancelled before it ran: ${String(signal.reason)}`));
      };
      const admit = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.queue.push(admit);
    });
  }

  /** Hands the slot to the oldest queued job, if any. */
  private releaseSlot(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.runningCount--;
  }

  /** The receipt (a bare DISPATCHED progress); one that is lost only makes the gateway send the job again. */
  private acknowledgeArrival(replies: { progress: string }, jobId: string): Promise<void> {
    return this.publish(replies.progress, jobId, { kind: 'jobProgress', jobProgress: { jobId, status: JobStatus.DISPATCHED } }).catch(() => undefined);
  }

  private publish(subject: string, traceId: string, payload: BusPacket['payload']): Promise<void> {
    return this.bus.publish(subject, { traceId, senderId: this.workerId, createdAt: this.clock.now(), protocolVersion: CAP_PROTOCOL_VERSION, payload });
  }
}

/**
 * Where a job's result and progress go: the subject its replica named, which only that replica hears; CAP's shared
 * subjects when it named none (or something that is not a reply subject, which is never published to).
 */
function repliesOf(job: JobRequest): { result: string; progress: string } {
  const own = job.replyTo !== undefined && isReplySubject(job.replyTo) ? job.replyTo : undefined;
  return own ? { result: own, progress: own } : { result: Subjects.result, progress: Subjects.progress };
}

/**
 * The caller's exchanged token for one job, asked for once (from another process, a round trip to the replica that
 * decided the call): the upstream's 401 still drops it where it is cached. No credential, no call: an upstream that
 * acts for callers never gets Gatehouse's own token in a caller's place.
 */
async function callerCredential(client: JobClientLink | undefined, server: string): Promise<UpstreamCredential> {
  if (!client?.credential) throw new GatewayError('GH_ERR_CALLER_TOKEN_REQUIRED', `${server} takes calls only on a caller's behalf (token exchange), and this job has no caller token to exchange`, { data: { upstream: server } });
  const { credential } = client;
  const authorization = await credential.authorization();
  return { authorization: async () => authorization, rejected: () => credential.rejected() };
}

/** What an upstream call's span says besides its name: the MCP client attributes, and which job and executor ran it. */
function upstreamSpanAttributes(span: Span, job: JobRequest, context: JobContext, workerId: string): void {
  span.setAttributes({ 'mcp.method.name': context.request?.method ?? 'tools/call', 'gatehouse.job.id': job.jobId, 'gatehouse.upstream': context.server, 'gatehouse.executor': workerId });
  if (!context.request) span.setAttributes({ 'gen_ai.tool.name': context.tool, 'gen_ai.operation.name': 'execute_tool' });
}
