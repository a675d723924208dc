import type { Clock } from '../ports.ts';
import type { AuditTrail } from '../audit/trail.ts';
import { assertTransition, isTerminal, type JobState } from './job-state.ts';

const EVENT: Record<JobState, string> = {
  PENDING: 'job.submitted',
  APPROVAL_REQUIRED: 'job.approval_required',
  SCHEDULED: 'job.scheduled',
  DISPATCHED: 'job.dispatched',
  RUNNING: 'job.running',
  SUCCEEDED: 'job.succeeded',
  FAILED: 'job.failed',
  TIMEOUT: 'job.timeout',
  DENIED: 'job.denied',
  CANCELLED: 'job.cancelled',
};

/**
 * The state of each job in flight, moved only forward by the job state machine, with every transition written
 * to the audit trail. The one place that knows which audit event a transition is.
 */
export class JobTracker {
  private readonly jobs = new Map<string, { tenant: string; state: JobState }>();

  constructor(
    private readonly audit: Pick<AuditTrail, 'record' | 'written'>,
    private readonly clock: Clock,
  ) {}

  submit(jobId: string, tenant: string, actor: string, data: Record<string, unknown>): void {
    this.jobs.set(jobId, { tenant, state: 'PENDING' });
    this.audit.record({ tenant, at: this.clock.now(), type: EVENT.PENDING, actor, jobId, data });
  }

  /** An event about the job that is not a transition (the kernel's decision, for instance). */
  note(jobId: string, type: string, actor: string, data: Record<string, unknown>): void {
    const job = this.jobs.get(jobId);
    if (job) this.audit.record({ tenant: job.tenant, at: this.clock.now(), type, actor, jobId, data });
  }

  /**
   * A round of the job ended asking the client for input (its upstream's `input_required`, relayed): recorded after
   * the round's own end, for the retry carries on under the same job id.
   */
  inputRequired(jobId: string, tenant: string, data: Record<string, unknown>): void {
    this.audit.record({ tenant, at: this.clock.now(), type: 'job.input_required', actor: 'upstream', jobId, data });
  }

  /** Moves the job forward. Returns false, recording nothing, for a job that already ended or is unknown. */
  move(jobId: string, to: JobState, actor: string, data: Record<string, unknown> = {}): boolean {
    const job = this.jobs.get(jobId);
    if (!job) return false;
    assertTransition(jobId, job.state, to);
    job.state = to;
    this.audit.record({ tenant: job.tenant, at: this.clock.now(), type: EVENT[to], actor, jobId, data });
    if (isTerminal(to)) this.jobs.delete(jobId);
    return true;
  }

  /**
   * The dispatch barrier: resolves once every record of the job so far (submitted, decided, dispatched …) is
   * written by the audit trail, in one group commit with the other jobs waiting. Rejects with
   * GH_ERR_AUDIT_UNAVAILABLE when the trail cannot write them within its timeout.
   */
  recorded(jobId: string): Promise<void> {
    const job = this.jobs.get(jobId);
    return job ? this.audit.written(job.tenant) : Promise.resolve();
  }

  /** Stops tracking a job whose call has returned without ending it (parked on an approval). */
  release(jobId: string): void {
    this.jobs.delete(jobId);
  }
}
