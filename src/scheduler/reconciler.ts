import type { Clock, DeadLetter, JobLedger, OpenJob, Store } from '../ports.ts';
import type { AuditTrail } from '../audit/trail.ts';
import type { Logger } from '../log.ts';
import { asGatewayError } from '../errors.ts';
import { contextPtr } from '../protocol/cap.ts';
import type { JobContext } from '../protocol/job-context.ts';

/** The leader lock: whoever holds it is the one replica that ends orphaned jobs and runs DLQ retries. */
export const RECONCILER_LOCK = 'reconciler';

export interface ReconcilerOptions {
  /** How often the reconciler runs (ms, default 5 000), on an unref'ed timer. */
  intervalMs?: number;
  /**
   * How long the leader lock lasts unless renewed (ms, default 3 × `intervalMs`): a leader that died is replaced
   * after at most this long. The leader renews it on every pass.
   */
  lockTtlMs?: number;
  /** How many overdue jobs one pass ends (default 100); the rest wait for the next pass. */
  batch?: number;
  /** How many DLQ retries may run at once on the leader (default 4). */
  maxRetriesRunning?: number;
}

/** How a retried call ended. */
export interface RetryOutcome {
  /** The new job it ran as (none when it was refused before it became one). */
  jobId?: string;
  /** Unset when it succeeded; a GH_ERR_* code, or `tool_error` when the tool itself answered with an error. */
  errorCode?: string;
}

export interface ReconcilerDeps {
  ledger: JobLedger;
  /** Where the contexts (`ctx:<job_id>`) of orphaned jobs are read, for their dead letters. */
  store: Pick<Store, 'get'>;
  audit: Pick<AuditTrail, 'record'>;
  clock: Clock;
  log: Logger;
  /** This replica: the lock's holder, and who takes retries. */
  holder: string;
  /**
   * Runs a dead job's call again as its caller, through the whole governed path (decided under the current policy,
   * scheduled, audited), with nobody to answer. Resolves to undefined when it cannot be submitted here at all (its
   * tool is gone): the entry then goes back to the DLQ. Without it, retry requests wait for a gateway that has one.
   */
  resubmit?: (dead: DeadLetter) => Promise<RetryOutcome | undefined>;
  options?: ReconcilerOptions;
}

const DEFAULT_INTERVAL_MS = 5_000;
const DEFAULT_BATCH = 100;
const DEFAULT_RETRIES_RUNNING = 4;

/**
 * Ends what nobody else will: on every pass it takes (or renews) the leader lock, and only the holder goes on.
 * - A job of another replica still open in the ledger past its deadline has lost that replica (it died, or lost
 *   the job): it is audited as `job.timeout`, dead-lettered as GH_ERR_EXECUTION_IN_DOUBT (it may have run) with its
 *   context, and finished.
 * - A DLQ entry someone asked to retry (`gatehouse dlq retry`) is taken, run again through `resubmit`, and removed
 *   once that ended; the outcome is audited (`dlq.retry_started`, `dlq.retried`), since its client is long gone.
 *   One still taken `RETRY_TAKEN_TTL_MS` later lost its taker, and is taken again.
 * Every failure is logged and left for the next pass: the reconciler itself never ends a call.
 */
export class Reconciler {
  private readonly intervalMs: number;
  private readonly lockTtlMs: number;
  /** The retries this replica runs, by the dead job's id. */
  private readonly retrying = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private passing: Promise<void> | undefined;
  private leader = false;

  constructor(private readonly deps: ReconcilerDeps) {
    this.intervalMs = deps.options?.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.lockTtlMs = deps.options?.lockTtlMs ?? 3 * this.intervalMs;
  }

  /** Whether this replica held the leader lock at its last pass. */
  get isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.pass(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops passing and hands the lock on at once; retries under way go on (`idle` waits for them). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.passing;
    if (!this.leader) return;
    this.leader = false;
    await this.deps.ledger.releaseLock(RECONCILER_LOCK, this.deps.holder).catch((err: unknown) => this.failed('release the leader lock', err));
  }

  /** One pass; passes never overlap. Runs on the timer; tests call it directly. */
  pass(): Promise<void> {
    this.passing ??= this.leadAndReconcile().finally(() => (this.passing = undefined));
    return this.passing;
  }

  /** Resolves once the retries this replica runs have ended, each with its entry removed and its outcome audited. */
  async idle(): Promise<void> {
    while (this.retrying.size > 0) await Promise.allSettled([...this.retrying.values()]);
  }

  private async leadAndReconcile(): Promise<void> {
    const { ledger, holder } = this.deps;
    try {
      this.leader = await ledger.acquireLock(RECONCILER_LOCK, holder, this.lockTtlMs);
    } catch (err) {
      this.leader = false;
      return this.failed('take the leader lock', err);
    }
    if (!this.leader) return;
    try {
      await this.endOverdue();
      await this.startRetries();
    } catch (err) {
      this.failed('reconcile', err);
    }
  }

  private async endOverdue(): Promise<void> {
    const { ledger, clock } = this.deps;
    const now = clock.now();
    for (const job of await ledger.overdue(now, this.deps.options?.batch ?? DEFAULT_BATCH)) {
      try {
        // Ours: our scheduler ends its jobs before their ledger deadline (and audits and dead-letters them), so
        // this one only lost its `finish` on the way. Another process never has our id: each replica draws its own.
        if (job.replica === this.deps.holder) await ledger.finish(job.jobId);
        else await this.endOrphan(job, now);
      } catch (err) {
        this.failed(`end the orphaned job ${job.jobId}`, err);
      }
    }
  }

  /** Dead-lettered, then finished, then audited: a pass that fails half-way is redone whole by the next one. */
  private async endOrphan(job: OpenJob, now: number): Promise<void> {
    const { ledger, store, audit, holder } = this.deps;
    const { deadline, ...facts } = job;
    const reason = `no result reached replica ${job.replica} by ${new Date(deadline).toISOString()} (the replica stopped or lost the job); it may or may not have run, so it is not run again`;
    const context = await store.get<JobContext>(contextPtr(job.jobId)).catch(() => undefined);
    await ledger.deadLetter({ ...facts, code: 'GH_ERR_EXECUTION_IN_DOUBT', message: reason, at: now, ...(context ? { context } : {}) });
    await ledger.finish(job.jobId);
    audit.record({
      tenant: job.tenant,
      at: now,
      type: 'job.timeout',
      actor: 'reconciler',
      jobId: job.jobId,
      data: { errorCode: 'GH_ERR_EXECUTION_IN_DOUBT', reason, replica: job.replica, pool: job.pool, deadline, by: holder },
    });
  }

  private async startRetries(): Promise<void> {
    const { ledger, clock, holder, resubmit } = this.deps;
    if (!resubmit) return;
    const max = this.deps.options?.maxRetriesRunning ?? DEFAULT_RETRIES_RUNNING;
    while (this.retrying.size < max) {
      const dead = await ledger.takeRetry(holder, clock.now());
      if (!dead) return;
      // Taken again after RETRY_TAKEN_TTL_MS, but still running here: it goes on, and stays ours.
      if (this.retrying.has(dead.jobId)) continue;
      const running = this.retry(dead, resubmit);
      this.retrying.set(dead.jobId, running);
      void running.finally(() => this.retrying.delete(dead.jobId));
    }
  }

  private async retry(dead: DeadLetter, resubmit: (dead: DeadLetter) => Promise<RetryOutcome | undefined>): Promise<void> {
    const { ledger, audit, clock } = this.deps;
    const requested = { requestedBy: dead.retry?.requestedBy, requestedAt: dead.retry?.requestedAt };
    audit.record({ tenant: dead.tenant, at: clock.now(), type: 'dlq.retry_started', actor: 'reconciler', jobId: dead.jobId, data: { ...requested, code: dead.code, by: this.deps.holder } });
    let outcome: RetryOutcome | undefined;
    let why: string | undefined;
    try {
      outcome = dead.context ? await resubmit(dead) : undefined;
      if (!outcome) why = dead.context ? `its tool ${dead.server}/${dead.tool} is not served here` : 'its context (the arguments) is gone';
    } catch (err) {
      why = asGatewayError(err).message;
    }
    try {
      if (outcome) {
        await ledger.removeDead(dead.jobId);
        audit.record({ tenant: dead.tenant, at: clock.now(), type: 'dlq.retried', actor: 'reconciler', jobId: dead.jobId, data: { ...requested, retryJobId: outcome.jobId, outcome: outcome.errorCode ?? 'succeeded' } });
        return;
      }
      // Not run: back into the DLQ as it was, without the request, so that it can be looked at, retried or dropped.
      const { retry: _taken, ...entry } = dead;
      await ledger.removeDead(dead.jobId);
      await ledger.deadLetter(entry);
      audit.record({ tenant: dead.tenant, at: clock.now(), type: 'dlq.retry_failed', actor: 'reconciler', jobId: dead.jobId, data: { ...requested, reason: why } });
    } catch (err) {
      this.failed(`finish the retry of ${dead.jobId}`, err);
    }
  }

  private failed(what: string, err: unknown): void {
    const error = asGatewayError(err);
    this.deps.log.warn(`the reconciler could not ${what}; it tries again on its next pass`, { code: error.code, error: error.message });
  }
}
