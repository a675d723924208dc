import type { Bus, Clock, ProgressUpdate, Subscription } from '../ports.ts';
import { CAP_PROTOCOL_VERSION, JobStatus, Subjects, type BusPacket, type JobRequest, type JobResult } from '../protocol/cap.ts';
import { GatewayError } from '../errors.ts';
import { stateOfStatus } from './job-state.ts';
import type { JobTracker } from './job-tracker.ts';

interface Waiter {
  job: JobRequest;
  resolve(result: JobResult): void;
  onProgress?: (update: ProgressUpdate) => void;
}

export interface RunOptions {
  /** The pool whose executors serve the job's upstream. */
  pool: string;
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

  constructor(
    private readonly bus: Bus,
    private readonly jobs: JobTracker,
    private readonly clock: Clock,
    private readonly senderId: string,
  ) {}

  start(): void {
    this.subscriptions.push(
      this.bus.subscribe(Subjects.result, (packet) => {
        if (packet.payload.kind === 'jobResult') this.onResult(packet.payload.jobResult);
      }),
      this.bus.subscribe(Subjects.progress, (packet) => {
        if (packet.payload.kind !== 'jobProgress') return;
        const { jobId, progress, total, message, percent } = packet.payload.jobProgress;
        this.waiters.get(jobId)?.onProgress?.({
          progress: progress ?? percent ?? 0,
          ...(total === undefined ? {} : { total }),
          ...(message === undefined ? {} : { message }),
        });
      }),
    );
  }

  stop(): void {
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    for (const [jobId, waiter] of this.waiters) waiter.resolve(failedResult(jobId, 'GH_ERR_UPSTREAM_UNAVAILABLE', 'the gateway is shutting down'));
    this.waiters.clear();
  }

  /** Dispatches the job and resolves with its result; cancellation travels to the executor on `sys.job.cancel`. */
  run(job: JobRequest, options: RunOptions): Promise<JobResult> {
    // A client that went away before dispatch gets nothing run on its behalf.
    if (options.signal?.aborted) {
      this.jobs.move(job.jobId, 'CANCELLED', job.principalId, { reason: 'cancelled before dispatch' });
      return Promise.resolve({ jobId: job.jobId, status: JobStatus.CANCELLED, workerId: '', executionMs: 0, errorCode: 'GH_ERR_CANCELLED', errorMessage: 'the call was cancelled before it ran' });
    }
    return new Promise<JobResult>((resolve) => {
      const onAbort = () => {
        void this.bus.publish(Subjects.cancel, this.packet(options.traceId ?? job.jobId, { kind: 'jobCancel', jobCancel: { jobId: job.jobId, reason: 'cancelled by the client', requestedBy: job.principalId } }));
      };
      this.waiters.set(job.jobId, {
        job,
        onProgress: options.onProgress,
        resolve: (result) => {
          options.signal?.removeEventListener('abort', onAbort);
          resolve(result);
        },
      });
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.jobs.move(job.jobId, 'DISPATCHED', 'scheduler', { pool: options.pool });
      this.bus.publish(Subjects.pool(options.pool), this.packet(options.traceId ?? job.jobId, { kind: 'jobRequest', jobRequest: job })).catch((err: unknown) => {
        this.onResult(failedResult(job.jobId, 'GH_ERR_UPSTREAM_UNAVAILABLE', `could not dispatch: ${(err as Error).message}`));
      });
    });
  }

  private onResult(result: JobResult): void {
    const waiter = this.waiters.get(result.jobId);
    if (!waiter) return; // a result for a job that already ended: recorded by whoever ended it, ignored here
    this.waiters.delete(result.jobId);
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
