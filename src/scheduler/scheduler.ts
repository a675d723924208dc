import { jobLogFields } from './job-log-fields.ts';
import type { Bus, Clock, JobLedger, OpenJob, ProgressUpdate, Subscription } from '../ports.ts';
import { CAP_PROTOCOL_VERSION, JobStatus, Subjects, type BusPacket, type JobProgress, type JobRequest, type JobResult } from '../protocol/cap.ts';
import { asGatewayError, GatewayError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { stateOfStatus } from './job-state.ts';
import type { JobTracker } from './job-tracker.ts';
import type { JobContext } from '../protocol/job-context.ts';
import { JobBookkeeping } from './job-bookkeeping.ts';
import { JobSteps } from './job-steps.ts';

interface Waiter {
  job: JobRequest;
  options: RunOptions;
  resolve(result: JobResult): void;
  /** The worker the job was sent to, when a worker pool serves it (distributed mode). */
  workerId?: string;
  /** How many times the job was sent again after its worker died (idempotent tools only). */
  retries: number;
  /** How long the job may run (ms): its budget's deadline, or the default. */
  runMs: number;
  /** When the scheduler gives up waiting for its result; unset while no executor holds the job. */
  deadline?: number;
  /** The job as the ledger holds it, when there is a ledger. */
  open?: OpenJob;
  /** When the worker it was sent to must have said it arrived; unset once it did, or when nobody needs to. */
  receiptBy?: number;
  /** How many times it was sent to a worker that never said it arrived. */
  unreceived: number;
}

const DISPATCH_POLL_MS = 100;
const DEFAULT_DISPATCH_TIMEOUT_MS = 3_000;
const DEFAULT_RUN_TIMEOUT_MS = 60_000;
const DEFAULT_RUN_GRACE_MS = 5_000;
const DEFAULT_DEADLINE_SWEEP_MS = 1_000;
/** Sends to workers that never said the job arrived, before it fails with GH_ERR_NO_WORKER. */
const MAX_UNRECEIVED = 3;

/** Picks a live worker of a pool and hears of dead ones: the gateway's view of the workers (distributed mode). */
export interface WorkerRouter {
  /** Starts and stops listening to heartbeats: the scheduler that routes with it owns its lifecycle. */
  start(): void;
  stop(): void;
  pick(pool: string): string | undefined;
  noteDispatched(workerId: string, jobId: string): void;
  noteEnded(workerId: string, jobId: string): void;
  onDead(listener: (workerId: string) => void): () => void;
}

export interface SchedulerOptions {
  /** Routes jobs for worker pools; without one, every job goes to `job.<pool>` (embedded mode). */
  workers?: WorkerRouter;
  /**
   * Whether a job for a pool with no live worker may wait on `job.<pool>` for one to come (the bus keeps it
   * durably: NATS JetStream), rather than failing at once with GH_ERR_NO_WORKER.
   */
  queueWithoutWorkers?: boolean;
  /** How long a job waits for a live worker of its pool before GH_ERR_NO_WORKER (default 3 s). */
  dispatchTimeoutMs?: number;
  /**
   * How long a worker has to say a job sent straight to it arrived (workers acknowledge at once). Core NATS drops
   * a message its subscriber is not there for (the worker is reconnecting): without a receipt the job goes to a
   * worker again, and the claim keeps it from running twice. Unset: no receipts expected (embedded mode).
   */
  receiptTimeoutMs?: number;
  /** Retries of an idempotent job whose worker died (default 3), with exponential backoff from `retryDelayMs`. */
  maxRetries?: number;
  retryDelayMs?: number;
  /** How long a job may run when its budget sets no deadline (ms, default 60 000). */
  runTimeoutMs?: number;
  /**
   * How long past its run timeout the scheduler still waits for a job's result (ms, default 5 000): the executor
   * times the upstream out itself and reports it, which says more. After that the job ends as TIMEOUT with
   * GH_ERR_UPSTREAM_TIMEOUT (its worker may have swallowed it), a cancel goes out, and it is dead-lettered. Each
   * progress packet restarts the clock.
   */
  runGraceMs?: number;
  /** How often waiting jobs are held against their deadlines (ms, default 1 000): the timeout's resolution. */
  deadlineSweepMs?: number;
  /**
   * The jobs in flight and the dead-letter queue. Each dispatched job is opened there with a deadline (the run
   * timeout and its grace, plus `orphanGraceMs`) and finished when it ends; one that ends on an infrastructure
   * failure is dead-lettered with its context. None of this is awaited: a call never waits for the ledger, and a
   * failed write is logged (a job left open is then ended by the reconciler, as in doubt).
   */
  ledger?: JobLedger;
  /**
   * How long past the scheduler's own deadline a job still open in the ledger counts as orphaned (ms, default
   * 30 000): its replica died, and the leader's reconciler ends it. Long enough that a live replica always ends
   * its own jobs first, and covers clock skew between replicas.
   */
  orphanGraceMs?: number;
  /** Where failed ledger writes are reported. */
  log?: Logger;
}

export interface RunOptions {
  /** The pool whose executors serve the job's upstream. */
  pool: string;
  /** Set when a worker pool, not this process, serves the pool: the job goes to one of its live workers. */
  remote?: boolean;
  /** The tool is idempotent (or read-only): a job whose worker died may run again elsewhere. */
  idempotent?: boolean;
  /** The trace the job belongs to (the W3C trace id of the call, when it came with a traceparent). */
  traceId?: string;
  /** The job's stored context: kept in its dead letter if it dies, so that a retry can run it again. */
  context?: JobContext;
  /**
   * The write of that context to the Store, still in flight: the job goes out once it and the job's records are
   * written (both wait together). If it fails, the job is never sent and ends with the Store's code.
   */
  stored?: Promise<unknown>;
  signal?: AbortSignal;
  onProgress?: (update: ProgressUpdate) => void;
}

/**
 * Routes allowed jobs to their pool over the bus and waits for their results. Each job names this replica's own
 * reply subject, which it subscribes to once and matches by job id: a call costs one publish and two map lookups,
 * and its result and receipt reach this replica alone, however many replicas there are.
 */
export class Scheduler {
  private readonly waiters = new Map<string, Waiter>();
  private readonly subscriptions: Subscription[] = [];
  private stopWatchingWorkers: (() => void) | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  /** Set by `stop`: from then on a job is refused at once, since nothing would hear its result. */
  private stopped = false;
  private readonly log: Logger;
  private readonly book: JobBookkeeping;
  /** A job's steps before dispatch, as the call asks for them (submitted, decided, denied, held, parked). */
  readonly steps: JobSteps;
  /** Where executors answer this replica's jobs (`Subjects.reply`): its own subject, which no other replica hears. */
  private readonly replyTo: string;

  constructor(
    private readonly bus: Bus,
    private readonly jobs: JobTracker,
    private readonly clock: Clock,
    private readonly senderId: string,
    private readonly options: SchedulerOptions = {},
  ) {
    this.log = options.log ?? silentLogger;
    this.book = new JobBookkeeping(options.ledger, senderId, clock, this.log, options.orphanGraceMs);
    this.steps = new JobSteps(jobs);
    this.replyTo = Subjects.reply(senderId);
  }

  start(): void {
    this.options.workers?.start();
    this.stopWatchingWorkers = this.options.workers?.onDead((workerId) => this.onWorkerDead(workerId));
    const onPacket = (packet: BusPacket) => {
      if (packet.payload.kind === 'jobResult') this.onResult(packet.payload.jobResult);
      else if (packet.payload.kind === 'jobProgress') this.onProgress(packet.payload.jobProgress);
    };
    // Our jobs name our own subject, so only this replica hears their results and receipts; the shared subjects
    // still carry those of an executor that does not know `replyTo` (a CAP peer, a worker of an older release).
    this.subscriptions.push(this.bus.subscribe(this.replyTo, onPacket), this.bus.subscribe(Subjects.result, onPacket), this.bus.subscribe(Subjects.progress, onPacket));
    this.sweeper = setInterval(() => this.sweepDeadlines(), this.options.deadlineSweepMs ?? DEFAULT_DEADLINE_SWEEP_MS);
    this.sweeper.unref();
  }

  private onProgress({ jobId, progress, total, message, percent }: JobProgress): void {
    const waiter = this.waiters.get(jobId);
    if (!waiter) return;
    waiter.receiptBy = undefined;
    this.stillRunning(waiter);
    // A bare receipt (status only) is not progress the client should see.
    if (progress === undefined && percent === undefined && message === undefined) return;
    waiter.options.onProgress?.({
      progress: progress ?? percent ?? 0,
      ...(total === undefined ? {} : { total }),
      ...(message === undefined ? {} : { message }),
    });
  }

  /**
   * Ends the jobs whose result is overdue as TIMEOUT (GH_ERR_UPSTREAM_TIMEOUT): the executor should have reported
   * by now, so its worker may have swallowed the job. Runs on a timer; tests call it directly.
   */
  sweepDeadlines(): void {
    const now = this.clock.now();
    for (const waiter of [...this.waiters.values()]) {
      if (waiter.receiptBy !== undefined && waiter.receiptBy <= now) {
        this.notReceived(waiter);
        continue;
      }
      if (waiter.deadline === undefined || waiter.deadline > now) continue;
      const { job } = waiter;
      // Whoever still holds it stops: nobody waits for its result any more.
      this.cancel(waiter, 'run timeout', 'scheduler');
      this.onResult({
        jobId: job.jobId,
        status: JobStatus.TIMEOUT,
        workerId: '',
        executionMs: 0,
        errorCode: 'GH_ERR_UPSTREAM_TIMEOUT',
        errorMessage: `no result within ${waiter.runMs} ms${waiter.workerId ? ` from worker ${waiter.workerId}` : ''}; the job may or may not have run`,
      });
    }
  }

  /**
   * Stops listening, and ends every job still waited on, each audited, and told to stop (a cancel goes out). From
   * now on `run` refuses every job: nothing would hear its result.
   */
  stop(): void {
    this.stopped = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.stopWatchingWorkers?.();
    this.options.workers?.stop();
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    for (const waiter of [...this.waiters.values()]) {
      this.cancel(waiter, 'the gateway is stopping', 'scheduler');
      this.onResult(stoppedResult(waiter));
    }
  }

  /** Dispatches the job and resolves with its result; cancellation travels to the executor on `sys.job.cancel`. */
  run(job: JobRequest, options: RunOptions): Promise<JobResult> {
    // A client that went away before dispatch gets nothing run on its behalf.
    if (options.signal?.aborted) {
      this.jobs.move(job.jobId, 'CANCELLED', job.principalId, { reason: 'cancelled before dispatch' });
      return Promise.resolve(cancelledResult(job.jobId, 'the call was cancelled before it ran'));
    }
    if (this.stopped) {
      // Nothing ran, and it can be tried again: dead-lettered like a job `stop` found waiting for a worker.
      const result = failedResult(job.jobId, 'GH_ERR_UPSTREAM_UNAVAILABLE', 'the gateway is stopping');
      this.jobs.move(job.jobId, 'FAILED', 'scheduler', { errorCode: result.errorCode });
      this.book.close({ job, options }, result);
      return Promise.resolve(result);
    }
    return new Promise<JobResult>((resolve) => {
      const onAbort = () => this.cancel(waiter, 'cancelled by the client', job.principalId);
      const waiter: Waiter = {
        job,
        options,
        retries: 0,
        unreceived: 0,
        runMs: job.budget?.deadlineMs || (this.options.runTimeoutMs ?? DEFAULT_RUN_TIMEOUT_MS),
        resolve: (result) => {
          options.signal?.removeEventListener('abort', onAbort);
          resolve(result);
        },
      };
      this.waiters.set(job.jobId, waiter);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.jobs.move(job.jobId, 'DISPATCHED', 'scheduler', { pool: options.pool });
      const waitMs = options.remote && this.options.workers ? (this.options.dispatchTimeoutMs ?? DEFAULT_DISPATCH_TIMEOUT_MS) : 0;
      this.book.open(waiter, this.clock.now() + waitMs + waiter.runMs + this.runGraceMs);
      // The barrier: nothing reaches an upstream before its records are written, so a crash loses none of them.
      const recorded = this.jobs.recorded(job.jobId).catch((err: unknown) => Promise.reject(asGatewayError(err, 'GH_ERR_AUDIT_UNAVAILABLE')));
      const stored = options.stored?.catch((err: unknown) => Promise.reject(asGatewayError(err, 'GH_ERR_STATE_UNAVAILABLE')));
      (stored ? Promise.all([recorded, stored]) : recorded).then(
        () => this.dispatchRecorded(waiter),
        (error: GatewayError) => {
          if (this.waiters.get(job.jobId) !== waiter) return;
          this.onResult(failedResult(job.jobId, error.code, `not dispatched: ${error.message}`));
        },
      );
    });
  }

  /** The job's records are written: it goes out, unless it ended meanwhile (the gateway stopped) or was cancelled. */
  private dispatchRecorded(waiter: Waiter): void {
    const { job, options } = waiter;
    if (this.waiters.get(job.jobId) !== waiter) return;
    if (options.signal?.aborted) this.onResult(cancelledResult(job.jobId, 'the call was cancelled before it ran'));
    else this.dispatch(waiter);
  }

  /** Sends the job to the least-loaded live worker of its pool, or to the pool's queue. */
  private dispatch(waiter: Waiter): void {
    const { job, options } = waiter;
    const router = options.remote ? this.options.workers : undefined;
    const workerId = router?.pick(options.pool);
    if (router && !workerId && !this.options.queueWithoutWorkers) {
      this.detach(this.dispatchOnceAWorkerIsLive(waiter, router), 'wait for a live worker', waiter);
      return;
    }
    waiter.workerId = workerId;
    if (workerId) router?.noteDispatched(workerId, job.jobId);
    waiter.receiptBy = workerId && this.options.receiptTimeoutMs !== undefined ? this.clock.now() + this.options.receiptTimeoutMs : undefined;
    waiter.deadline = this.clock.now() + waiter.runMs + this.runGraceMs;
    if (waiter.retries > 0) this.book.open(waiter, waiter.deadline);
    const subject = workerId ? Subjects.worker(workerId) : Subjects.pool(options.pool);
    const sent = this.bus.publish(subject, this.packet(options.traceId ?? job.jobId, { kind: 'jobRequest', jobRequest: { ...job, replyTo: this.replyTo } })).catch((err: unknown) => {
      this.onResult(failedResult(job.jobId, asGatewayError(err, 'GH_ERR_UPSTREAM_UNAVAILABLE').code, `could not dispatch: ${(err as Error).message}`));
    });
    this.detach(sent, 'end a job the bus refused', waiter);
  }

  /**
   * No worker of the pool is live: wait up to the dispatch timeout for one (a gateway that just started has heard
   * no heartbeat yet; a worker may be restarting), then fail with GH_ERR_NO_WORKER rather than hang.
   */
  private async dispatchOnceAWorkerIsLive(waiter: Waiter, router: WorkerRouter): Promise<void> {
    const { job, options } = waiter;
    const until = this.clock.now() + (this.options.dispatchTimeoutMs ?? DEFAULT_DISPATCH_TIMEOUT_MS);
    while (this.clock.now() < until) {
      try {
        await this.clock.sleep(DISPATCH_POLL_MS, options.signal);
      } catch {
        break; // cancelled: ends below, since nobody holds the job
      }
      if (this.waiters.get(job.jobId) !== waiter) return;
      if (router.pick(options.pool)) return this.dispatch(waiter);
    }
    if (this.waiters.get(job.jobId) !== waiter) return;
    if (options.signal?.aborted) this.onResult(cancelledResult(job.jobId, 'the call was cancelled before it ran'));
    else this.onResult(failedResult(job.jobId, 'GH_ERR_NO_WORKER', `no live worker serves pool ${options.pool}; start one with \`gatehouse worker --pool ${options.pool}\``));
  }

  /**
   * The worker a job was sent to never said it arrived: it was not subscribed (reconnecting to NATS), or is gone.
   * The job goes to a live worker again; if it did arrive after all, the worker running it answers with that run,
   * and another worker's claim keeps a non-idempotent job from running twice (that delivery ends in doubt).
   */
  private notReceived(waiter: Waiter): void {
    const { job, options } = waiter;
    const workerId = waiter.workerId;
    if (workerId) this.options.workers?.noteEnded(workerId, job.jobId);
    waiter.workerId = waiter.receiptBy = waiter.deadline = undefined;
    if (++waiter.unreceived >= MAX_UNRECEIVED) {
      this.onResult(failedResult(job.jobId, 'GH_ERR_NO_WORKER', `no worker of pool ${options.pool} took the job (sent ${waiter.unreceived} times, last to ${workerId})`));
      return;
    }
    this.jobs.note(job.jobId, 'job.redispatched', 'scheduler', { worker: workerId, attempt: waiter.unreceived });
    this.dispatch(waiter);
  }

  /**
   * A worker died with jobs of ours on it. An idempotent job runs again on another worker; any other job may or
   * may not have run, and is never run twice: it ends as GH_ERR_EXECUTION_IN_DOUBT.
   */
  private onWorkerDead(workerId: string): void {
    for (const waiter of this.waiters.values()) {
      if (waiter.workerId !== workerId) continue;
      const { job, options } = waiter;
      this.options.workers?.noteEnded(workerId, job.jobId);
      waiter.workerId = undefined;
      waiter.deadline = undefined; // nobody runs it now: the retry's dispatch sets a new one
      if (!options.idempotent || waiter.retries >= (this.options.maxRetries ?? 3)) {
        const why = options.idempotent ? `its worker ${workerId} died and the retries are used up` : `its worker ${workerId} died mid-call and the tool is not idempotent, so it is not run again`;
        this.onResult(failedResult(job.jobId, options.idempotent ? 'GH_ERR_UPSTREAM_UNAVAILABLE' : 'GH_ERR_EXECUTION_IN_DOUBT', why));
        continue;
      }
      const delayMs = (this.options.retryDelayMs ?? 100) * 2 ** waiter.retries++;
      this.jobs.note(job.jobId, 'job.retried', 'scheduler', { worker: workerId, attempt: waiter.retries, delayMs });
      const retried = this.clock.sleep(delayMs, options.signal).then(
        () => this.waiters.get(job.jobId) === waiter && this.dispatch(waiter),
        // Cancelled while no worker holds it: nobody else would answer.
        () => this.waiters.get(job.jobId) === waiter && this.onResult(cancelledResult(job.jobId, 'the call was cancelled before it ran again')),
      );
      this.detach(retried, 'run again', waiter);
    }
  }

  private onResult(result: JobResult): void {
    const waiter = this.waiters.get(result.jobId);
    if (!waiter) return; // a result for a job that already ended: recorded by whoever ended it, ignored here
    this.waiters.delete(result.jobId);
    if (waiter.workerId) this.options.workers?.noteEnded(waiter.workerId, result.jobId);
    this.book.close(waiter, result);
    try {
      // Keys in JCS order, as job.submitted's.
      this.jobs.move(result.jobId, stateOfStatus(result.status), result.workerId || 'scheduler', {
        ...(result.errorCode ? { errorCode: result.errorCode } : {}),
        executionMs: result.executionMs,
        ...(result.resultDigest ? { resultBytes: result.resultBytes, resultDigest: result.resultDigest } : {}),
        ...(result.resultPtr ? { resultPtr: result.resultPtr } : {}),
      });
    } finally {
      waiter.resolve(result); // whatever the bookkeeping did, the caller gets its answer
    }
  }

  /** Progress: the job is alive, so its deadlines move (the ledger's only now and then: see JobBookkeeping). */
  private stillRunning(waiter: Waiter): void {
    if (waiter.deadline === undefined) return;
    waiter.deadline = this.clock.now() + waiter.runMs + this.runGraceMs;
    this.book.extend(waiter, waiter.deadline);
  }

  private get runGraceMs(): number {
    return this.options.runGraceMs ?? DEFAULT_RUN_GRACE_MS;
  }

  /** Tells whoever holds the job to stop. A cancel the bus refused (NATS down) is only logged: there is no retry. */
  private cancel({ job, options }: Waiter, reason: string, requestedBy: string): void {
    const sent = this.bus.publish(Subjects.cancel, this.packet(options.traceId ?? job.jobId, { kind: 'jobCancel', jobCancel: { jobId: job.jobId, reason, requestedBy } }));
    sent.catch((err: unknown) => {
      if (this.log.isLevelEnabled('debug')) this.log.debug(`could not send the cancel of job ${job.jobId}`, { ...jobLogFields(job, options.traceId), code: asGatewayError(err).code, error: (err as Error)?.message });
    });
  }

  /** Work nobody awaits: a failure is logged, never an unhandled rejection (which ends the process on Node 20). */
  private detach(work: Promise<unknown>, what: string, { job, options }: Waiter): void {
    work.catch((err: unknown) => this.log.warn(`could not ${what}: job ${job.jobId}`, { ...jobLogFields(job, options.traceId), code: asGatewayError(err).code, error: (err as Error)?.message }));
  }

  private packet(traceId: string, payload: BusPacket['payload']): BusPacket {
    return { traceId, senderId: this.senderId, createdAt: this.clock.now(), protocolVersion: CAP_PROTOCOL_VERSION, payload };
  }
}

/**
 * How a job still waited on ends when the gateway stops. One its client cancelled (the HTTP front closed first)
 * ends cancelled, though its worker has not confirmed it yet. Any other may still be running on a worker: in doubt,
 * unless its tool is idempotent or it never left this process, which can be tried again.
 */
function stoppedResult({ job, options, deadline, workerId }: Waiter): JobResult {
  if (options.signal?.aborted) return cancelledResult(job.jobId, 'the call was cancelled; the gateway stopped before its worker confirmed it');
  if (deadline === undefined) return failedResult(job.jobId, 'GH_ERR_UPSTREAM_UNAVAILABLE', 'the gateway is stopping; the job was not sent to a worker, so it did not run');
  const where = workerId ? ` on worker ${workerId}` : '';
  if (options.idempotent) return failedResult(job.jobId, 'GH_ERR_UPSTREAM_UNAVAILABLE', `the gateway stopped while the job ran${where}; the tool is idempotent, so it can be tried again`);
  return failedResult(job.jobId, 'GH_ERR_EXECUTION_IN_DOUBT', `the gateway stopped while the job ran${where}; it was told to stop, but may or may not have run, and the tool is not idempotent, so it is not run again`);
}

function failedResult(jobId: string, code: GatewayError['code'], message: string): JobResult {
  return { jobId, status: JobStatus.FAILED, workerId: '', executionMs: 0, errorCode: code, errorMessage: message };
}

function cancelledResult(jobId: string, message: string): JobResult {
  return { jobId, status: JobStatus.CANCELLED, workerId: '', executionMs: 0, errorCode: 'GH_ERR_CANCELLED', errorMessage: message };
}
