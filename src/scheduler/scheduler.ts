import type { Bus, Clock, ProgressUpdate, Subscription } from '../ports.ts';
import { CAP_PROTOCOL_VERSION, JobStatus, Subjects, type BusPacket, type JobRequest, type JobResult } from '../protocol/cap.ts';
import { asGatewayError, GatewayError } from '../errors.ts';
import { stateOfStatus } from './job-state.ts';
import type { JobTracker } from './job-tracker.ts';

interface Waiter {
  job: JobRequest;
  options: RunOptions;
  resolve(result: JobResult): void;
  /** The worker the job was sent to, when a worker pool serves it (distributed mode). */
  workerId?: string;
  /** How many times the job was sent again after its worker died (idempotent tools only). */
  retries: number;
}

const DISPATCH_POLL_MS = 100;

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
  /** Retries of an idempotent job whose worker died (default 3), with exponential backoff from `retryDelayMs`. */
  maxRetries?: number;
  retryDelayMs?: number;
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
  signal?: AbortSignal;
  onProgress?: (update: ProgressUpdate) => void;
}

/**
 * Routes allowed jobs to their pool over the bus and waits for their results. It subscribes once to the
 * result and progress subjects and matches by job id, so a call costs one publish and two map lookups.
 */
export class Scheduler {
  private readonly waiters = new Map<string, Waiter>();
  private readonly subscriptions: Subscription[] = [];
  private stopWatchingWorkers: (() => void) | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly jobs: JobTracker,
    private readonly clock: Clock,
    private readonly senderId: string,
    private readonly options: SchedulerOptions = {},
  ) {}

  start(): void {
    this.options.workers?.start();
    this.stopWatchingWorkers = this.options.workers?.onDead((workerId) => this.onWorkerDead(workerId));
    this.subscriptions.push(
      this.bus.subscribe(Subjects.result, (packet) => {
        if (packet.payload.kind === 'jobResult') this.onResult(packet.payload.jobResult);
      }),
      this.bus.subscribe(Subjects.progress, (packet) => {
        if (packet.payload.kind !== 'jobProgress') return;
        const { jobId, progress, total, message, percent } = packet.payload.jobProgress;
        this.waiters.get(jobId)?.options.onProgress?.({
          progress: progress ?? percent ?? 0,
          ...(total === undefined ? {} : { total }),
          ...(message === undefined ? {} : { message }),
        });
      }),
    );
  }

  stop(): void {
    this.stopWatchingWorkers?.();
    this.options.workers?.stop();
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    for (const [jobId, waiter] of this.waiters) waiter.resolve(failedResult(jobId, 'GH_ERR_UPSTREAM_UNAVAILABLE', 'the gateway is shutting down'));
    this.waiters.clear();
  }

  /** Dispatches the job and resolves with its result; cancellation travels to the executor on `sys.job.cancel`. */
  run(job: JobRequest, options: RunOptions): Promise<JobResult> {
    // A client that went away before dispatch gets nothing run on its behalf.
    if (options.signal?.aborted) {
      this.jobs.move(job.jobId, 'CANCELLED', job.principalId, { reason: 'cancelled before dispatch' });
      return Promise.resolve(cancelledResult(job.jobId, 'the call was cancelled before it ran'));
    }
    return new Promise<JobResult>((resolve) => {
      const onAbort = () => {
        void this.bus.publish(Subjects.cancel, this.packet(options.traceId ?? job.jobId, { kind: 'jobCancel', jobCancel: { jobId: job.jobId, reason: 'cancelled by the client', requestedBy: job.principalId } }));
      };
      const waiter: Waiter = {
        job,
        options,
        retries: 0,
        resolve: (result) => {
          options.signal?.removeEventListener('abort', onAbort);
          resolve(result);
        },
      };
      this.waiters.set(job.jobId, waiter);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.jobs.move(job.jobId, 'DISPATCHED', 'scheduler', { pool: options.pool });
      this.dispatch(waiter);
    });
  }

  /** Sends the job to the least-loaded live worker of its pool, or to the pool's queue. */
  private dispatch(waiter: Waiter): void {
    const { job, options } = waiter;
    const router = options.remote ? this.options.workers : undefined;
    const workerId = router?.pick(options.pool);
    if (router && !workerId && !this.options.queueWithoutWorkers) {
      void this.dispatchOnceAWorkerIsLive(waiter, router);
      return;
    }
    waiter.workerId = workerId;
    if (workerId) router?.noteDispatched(workerId, job.jobId);
    const subject = workerId ? Subjects.worker(workerId) : Subjects.pool(options.pool);
    this.bus.publish(subject, this.packet(options.traceId ?? job.jobId, { kind: 'jobRequest', jobRequest: job })).catch((err: unknown) => {
      this.onResult(failedResult(job.jobId, asGatewayError(err, 'GH_ERR_UPSTREAM_UNAVAILABLE').code, `could not dispatch: ${(err as Error).message}`));
    });
  }

  /**
   * No worker of the pool is live: wait up to the dispatch timeout for one (a gateway that just started has heard
   * no heartbeat yet; a worker may be restarting), then fail with GH_ERR_NO_WORKER rather than hang.
   */
  private async dispatchOnceAWorkerIsLive(waiter: Waiter, router: WorkerRouter): Promise<void> {
    const { job, options } = waiter;
    const until = this.clock.now() + (this.options.dispatchTimeoutMs ?? 3_000);
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
   * A worker died with jobs of ours on it. An idempotent job runs again on another worker; any other job may or
   * may not have run, and is never run twice: it ends as GH_ERR_EXECUTION_IN_DOUBT.
   */
  private onWorkerDead(workerId: string): void {
    for (const waiter of this.waiters.values()) {
      if (waiter.workerId !== workerId) continue;
      const { job, options } = waiter;
      this.options.workers?.noteEnded(workerId, job.jobId);
      waiter.workerId = undefined;
      if (!options.idempotent || waiter.retries >= (this.options.maxRetries ?? 3)) {
        const why = options.idempotent ? `its worker ${workerId} died and the retries are used up` : `its worker ${workerId} died mid-call and the tool is not idempotent, so it is not run again`;
        this.onResult(failedResult(job.jobId, options.idempotent ? 'GH_ERR_UPSTREAM_UNAVAILABLE' : 'GH_ERR_EXECUTION_IN_DOUBT', why));
        continue;
      }
      const delayMs = (this.options.retryDelayMs ?? 100) * 2 ** waiter.retries++;
      this.jobs.note(job.jobId, 'job.retried', 'scheduler', { worker: workerId, attempt: waiter.retries, delayMs });
      void this.clock.sleep(delayMs, options.signal).then(
        () => this.waiters.get(job.jobId) === waiter && this.dispatch(waiter),
        // Cancelled while no worker holds it: nobody else would answer.
        () => this.waiters.get(job.jobId) === waiter && this.onResult(cancelledResult(job.jobId, 'the call was cancelled before it ran again')),
      );
    }
  }

  private onResult(result: JobResult): void {
    const waiter = this.waiters.get(result.jobId);
    if (!waiter) return; // a result for a job that already ended: recorded by whoever ended it, ignored here
    this.waiters.delete(result.jobId);
    if (waiter.workerId) this.options.workers?.noteEnded(waiter.workerId, result.jobId);
    try {
      this.jobs.move(result.jobId, stateOfStatus(result.status), result.workerId || 'scheduler', {
        executionMs: result.executionMs,
        ...(result.errorCode ? { errorCode: result.errorCode } : {}),
        ...(result.resultPtr ? { resultPtr: result.resultPtr } : {}),
      });
    } finally {
      waiter.resolve(result); // whatever the bookkeeping did, the caller gets its answer
    }
  }

  private packet(traceId: string, payload: BusPacket['payload']): BusPacket {
    return { traceId, senderId: this.senderId, createdAt: this.clock.now(), protocolVersion: CAP_PROTOCOL_VERSION, payload };
  }
}

function failedResult(jobId: string, code: GatewayError['code'], message: string): JobResult {
  return { jobId, status: JobStatus.FAILED, workerId: '', executionMs: 0, errorCode: code, errorMessage: message };
}

function cancelledResult(jobId: string, message: string): JobResult {
  return { jobId, status: JobStatus.CANCELLED, workerId: '', executionMs: 0, errorCode: 'GH_ERR_CANCELLED', errorMessage: message };
}
