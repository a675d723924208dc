import { hostname } from 'node:os';
import type { AuditStore, Clock } from '../ports.ts';
import type { Logger } from '../log.ts';
import type { AuditRecord } from '../protocol/audit-record.ts';
import type { AuditTrail } from './trail.ts';

export const GATEWAY_STARTED = 'gateway.started';
export const GATEWAY_STOPPED = 'gateway.stopped';
export const OUTCOME_UNKNOWN = 'job.outcome_unknown';

/** Records that end a job: after one, nothing about it is in doubt. */
const OUTCOMES = new Set(['job.succeeded', 'job.failed', 'job.timeout', 'job.cancelled', 'job.denied', OUTCOME_UNKNOWN]);
/** Records that say a job was sent to its upstream (or worker). */
const SENT = new Set(['job.dispatched', 'job.running', 'job.redispatched']);

export interface InDoubtJob {
  jobId: string;
  /** The newest record of the job: how far it got. */
  last: { type: string; seq: number; at: number };
}

export interface InDoubtScan {
  jobs: InDoubtJob[];
  /** Records read, newest first, up to and including the marker. */
  records: number;
  /** The run marker the scan stopped at; none when it read the whole chain. */
  marker?: AuditRecord;
}

/**
 * Reads a chain back from its end to the newest run marker: a `gateway.stopped` (every call of that run ended and
 * recorded how) or a `gateway.started` (the run that follows it did not stop cleanly). The jobs sent to run since
 * then that have no outcome record were cut off by a kill, a crash or a power loss: they may or may not have run.
 * Only that run's records are read, so a start after a clean stop reads one record, however long the chain.
 */
export async function scanForInDoubt(store: Pick<AuditStore, 'readBack'>, tenant: string): Promise<InDoubtScan> {
  const ended = new Set<string>();
  const doubt = new Map<string, InDoubtJob>();
  let records = 0;
  const result = (marker?: AuditRecord): InDoubtScan => ({ jobs: [...doubt.values()].reverse(), records, ...(marker ? { marker } : {}) });
  for await (const record of store.readBack(tenant)) {
    records++;
    if (record.type === GATEWAY_STOPPED || record.type === GATEWAY_STARTED) return result(record);
    if (record.jobId === undefined) continue;
    if (OUTCOMES.has(record.type)) ended.add(record.jobId);
    else if (SENT.has(record.type) && !ended.has(record.jobId) && !doubt.has(record.jobId)) {
      doubt.set(record.jobId, { jobId: record.jobId, last: { type: record.type, seq: record.seq, at: record.at } });
    }
  }
  return result();
}

export interface RunMarkersDeps {
  store: Pick<AuditStore, 'readBack' | 'tenants'>;
  audit: Pick<AuditTrail, 'record' | 'flush'>;
  clock: Clock;
  log: Logger;
  /** This gateway's id. */
  replica: string;
  /** Whether a process runs with this pid on this machine (another gateway on the same data dir). */
  isAlive?: (pid: number) => boolean;
}

/**
 * Brackets each run of an embedded gateway in its chains: at start, an `outcome unknown` record for every job the
 * previous run sent to run and never recorded an end for, then `gateway.started`; at a clean stop, once every
 * call has ended, `gateway.stopped`. The markers bound the next start's scan to one run.
 */
export class RunMarkers {
  constructor(private readonly deps: RunMarkersDeps) {}

  /** Before serving: records what a run that did not stop cleanly left in doubt, then this run's start; waits for the write. */
  async started(): Promise<{ inDoubt: number }> {
    const { store, audit, clock, log, replica } = this.deps;
    let inDoubt = 0;
    const tenants = await store.tenants();
    for (const tenant of tenants) {
      let scan: InDoubtScan;
      try {
        scan = await scanForInDoubt(store, tenant);
      } catch (err) {
        log.error(`could not read the audit chain of tenant ${tenant} back to its last run marker; jobs that run left in doubt are not recorded`, { error: (err as Error).message });
        continue;
      }
      const other = this.liveGateway(scan.marker);
      if (other) {
        log.warn(`the audit chain of tenant ${tenant} says gateway ${other.replica} (pid ${other.pid}) runs on this data dir; its calls in flight are not marked outcome unknown`);
        continue;
      }
      for (const job of scan.jobs) {
        audit.record({
          tenant,
          at: clock.now(),
          type: OUTCOME_UNKNOWN,
          actor: 'gateway',
          jobId: job.jobId,
          data: {
            last: job.last,
            reason: 'the gateway stopped without ending this job (killed, crashed, or the machine went down) after sending it to run: it may or may not have run',
            ...(scan.marker?.type === GATEWAY_STARTED ? { run: scan.marker.data.replica } : {}),
          },
        });
      }
      if (scan.jobs.length > 0) log.warn(`${scan.jobs.length} job(s) of tenant ${tenant} were cut off by an unclean stop; recorded as ${OUTCOME_UNKNOWN}`, { jobs: scan.jobs.map((j) => j.jobId) });
      inDoubt += scan.jobs.length;
    }
    for (const tenant of tenants) {
      audit.record({ tenant, at: clock.now(), type: GATEWAY_STARTED, actor: 'gateway', data: { replica, pid: process.pid, host: hostname() } });
    }
    await audit.flush();
    return { inDoubt };
  }

  /** After every call ended and recorded how: the next start reads nothing of this run. */
  async stopped(): Promise<void> {
    const { store, audit, clock, replica } = this.deps;
    for (const tenant of await store.tenants()) audit.record({ tenant, at: clock.now(), type: GATEWAY_STOPPED, actor: 'gateway', data: { replica } });
  }

  /** The run the marker starts, when its process still runs here and is not this one. */
  private liveGateway(marker: AuditRecord | undefined): { replica: unknown; pid: number } | undefined {
    if (marker?.type !== GATEWAY_STARTED) return undefined;
    const { pid, host, replica } = marker.data as { pid?: number; host?: string; replica?: string };
    if (typeof pid !== 'number' || host !== hostname() || pid === process.pid) return undefined;
    return (this.deps.isAlive ?? processIsAlive)(pid) ? { replica, pid } : undefined;
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
