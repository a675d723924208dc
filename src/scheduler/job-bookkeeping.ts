import type { Clock, JobLedger, OpenJob } from '../ports.ts';
import { JobStatus, type JobRequest, type JobResult } from '../protocol/cap.ts';
import { asGatewayError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { JobContext } from '../protocol/job-context.ts';

/**
 * The failures of the infrastructure, not of the tool: a job the scheduler ends with one (its worker died, none
 * was live, the bus refused it, its result never came, the gateway stopped) goes to the dead-letter queue, where an
 * operator can retry it. A tool's own error, a refusal or a cancellation does not.
 */
export const DEAD_LETTER_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'GH_ERR_NO_WORKER',
  'GH_ERR_EXECUTION_IN_DOUBT',
  'GH_ERR_UPSTREAM_UNAVAILABLE',
  'GH_ERR_UPSTREAM_TIMEOUT',
  'GH_ERR_BUS_UNAVAILABLE',
  'GH_ERR_STATE_UNAVAILABLE',
]);

const DEFAULT_ORPHAN_GRACE_MS = 30_000;

/** A job as its bookkeeping sees it: the scheduler's waiter is one. */
export interface BookedJob {
  readonly job: JobRequest;
  readonly options: { readonly pool: string; readonly context?: JobContext };
  /** The job as the ledger holds it, once opened there. */
  open?: OpenJob;
}

/**
 * The scheduler's bookkeeping in the job ledger: a dispatched job is open there until an orphan grace past the
 * scheduler's own deadline, and finished when it ends; one the infrastructure failed is dead-lettered with its
 * context. Nothing here is awaited: a call never waits for the ledger, and a failed write is logged (a job left
 * open is then ended by the reconciler, as in doubt). Without a ledger it does nothing.
 */
export class JobBookkeeping {
  private readonly orphanGraceMs: number;

  constructor(
    private readonly ledger: JobLedger | undefined,
    private readonly replica: string,
    private readonly clock: Pick<Clock, 'now'>,
    private readonly log: Logger,
    orphanGraceMs = DEFAULT_ORPHAN_GRACE_MS,
  ) {
    this.orphanGraceMs = orphanGraceMs;
  }

  /** Opens the job (again), due an orphan grace after `until`, the scheduler's own deadline for it. */
  open(booked: BookedJob, until: number): void {
    if (!this.ledger) return;
    this.write((booked.open = { ...this.factsOf(booked), deadline: until + this.orphanGraceMs }));
  }

  /** Progress moved the scheduler's deadline to `until`: the ledger's follows once it moved by half the grace. */
  extend(booked: BookedJob, until: number): void {
    const { open } = booked;
    if (!open || until + this.orphanGraceMs - open.deadline < this.orphanGraceMs / 2) return;
    this.write((booked.open = { ...open, deadline: until + this.orphanGraceMs }));
  }

  /** The job ended: out of the ledger if it was opened there, and into the DLQ if the infrastructure failed it. */
  close(booked: BookedJob, result: JobResult): void {
    const { ledger } = this;
    if (!ledger) return;
    const { jobId } = result;
    if (booked.open) ledger.finish(jobId).catch((err: unknown) => this.failed('finish', jobId, err));
    const failed = result.status === JobStatus.FAILED || result.status === JobStatus.TIMEOUT;
    // Only what the scheduler itself ended (no worker reported it): an executor's result, even a failure, reached
    // the client as the tool's outcome, and the client can act on it.
    if (!failed || result.workerId || !result.errorCode || !DEAD_LETTER_CODES.has(result.errorCode)) return;
    const { context } = booked.options;
    ledger
      .deadLetter({
        ...this.factsOf(booked),
        code: result.errorCode as ErrorCode,
        message: result.errorMessage ?? 'the job failed',
        at: this.clock.now(),
        ...(context ? { context } : {}),
      })
      .catch((err: unknown) => this.failed('deadLetter', jobId, err));
  }

  private factsOf({ job, options }: BookedJob): Omit<OpenJob, 'deadline'> {
    return {
      jobId: job.jobId,
      tenant: job.tenantId,
      principal: job.principalId,
      server: job.labels['mcp.server'] ?? '',
      tool: job.labels['mcp.tool'] ?? job.topic,
      pool: options.pool,
      replica: this.replica,
    };
  }

  private write(open: OpenJob): void {
    this.ledger?.open(open).catch((err: unknown) => this.failed('open', open.jobId, err));
  }

  /** The ledger is bookkeeping beside the call: its failure is logged, never the call's. Never logs a context. */
  private failed(op: string, jobId: string, err: unknown): void {
    this.log.warn(`could not ${op} job ${jobId} in the job ledger`, { jobId, code: asGatewayError(err).code, error: (err as Error)?.message });
  }
}
