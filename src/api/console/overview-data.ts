import type { AuditStore } from '../../ports.ts';
import type { AuditRecord } from '../../protocol/audit-record.ts';
import { CLOCK_SLACK_MS } from './rule-hits.ts';

/** The Overview's charts cover the last hour, a minute a bucket. */
export const OVERVIEW_MINUTES = 60;
const MINUTE_MS = 60_000;
/** At most this many records are read for the charts, however busy the hour was (the answer says when it stopped). */
export const OVERVIEW_MAX_RECORDS = 100_000;

const TERMINAL = new Set(['job.succeeded', 'job.failed', 'job.denied', 'job.cancelled', 'job.timeout', 'job.outcome_unknown']);

/** Calls and their time, a minute a bucket, oldest minute first. */
export interface CallCharts {
  /** Each bucket's start (ms since the epoch). */
  minutes: number[];
  /** Calls submitted in each minute, by the kernel's decision (`none`: the call ended before one). */
  byDecision: Record<string, number[]>;
  /**
   * p50 and p95 of the ended calls of each minute (ms; null for a minute without one): Gatehouse's own time (the
   * call's whole time less the upstream's and the approval wait) and the upstream's (from dispatch to the result).
   */
  duration: { gatehouseP50: (number | null)[]; gatehouseP95: (number | null)[]; upstreamP50: (number | null)[]; upstreamP95: (number | null)[] };
  calls: number;
  /** False when the scan stopped at OVERVIEW_MAX_RECORDS: the oldest minutes are partial. */
  complete: boolean;
}

/** What the records of one job tell the charts. */
interface JobTimes {
  submitted?: number;
  decision?: string;
  dispatched?: number;
  approvalAsked?: number;
  approvalEnded?: number;
  ended?: number;
}

/**
 * The last hour's calls from one tenant's audit trail, read newest first and stopped past the hour: every call
 * records its submission, decision, dispatch and end, so the time split comes from the records' times (ms).
 */
export async function callCharts(records: Pick<AuditStore, 'readBack'>, tenant: string, now: number, maxRecords = OVERVIEW_MAX_RECORDS): Promise<CallCharts> {
  const first = Math.floor(now / MINUTE_MS) * MINUTE_MS - (OVERVIEW_MINUTES - 1) * MINUTE_MS;
  const jobs = new Map<string, JobTimes>();
  let scanned = 0;
  let complete = true;
  for await (const record of records.readBack(tenant)) {
    if (record.at < first - CLOCK_SLACK_MS) break;
    if (++scanned > maxRecords) {
      complete = false;
      break;
    }
    if (record.jobId === undefined) continue;
    let job = jobs.get(record.jobId);
    if (!job) jobs.set(record.jobId, (job = {}));
    note(job, record);
  }

  const minutes = Array.from({ length: OVERVIEW_MINUTES }, (_, i) => first + i * MINUTE_MS);
  const byDecision: Record<string, number[]> = {};
  const gatehouse: number[][] = minutes.map(() => []);
  const upstream: number[][] = minutes.map(() => []);
  let calls = 0;
  for (const job of jobs.values()) {
    if (job.submitted === undefined || job.submitted < first) continue;
    const bucket = Math.min(OVERVIEW_MINUTES - 1, Math.floor((job.submitted - first) / MINUTE_MS));
    const decision = job.decision ?? 'none';
    (byDecision[decision] ??= minutes.map(() => 0))[bucket]++;
    calls++;
    if (job.ended === undefined) continue;
    const upstreamMs = job.dispatched !== undefined ? Math.max(0, job.ended - job.dispatched) : 0;
    const approvalMs = job.approvalAsked !== undefined ? Math.max(0, (job.approvalEnded ?? job.ended) - job.approvalAsked) : 0;
    gatehouse[bucket].push(Math.max(0, job.ended - job.submitted - upstreamMs - approvalMs));
    if (job.dispatched !== undefined) upstream[bucket].push(upstreamMs);
  }
  return {
    minutes,
    byDecision,
    duration: {
      gatehouseP50: gatehouse.map((s) => percentile(s, 50)),
      gatehouseP95: gatehouse.map((s) => percentile(s, 95)),
      upstreamP50: upstream.map((s) => percentile(s, 50)),
      upstreamP95: upstream.map((s) => percentile(s, 95)),
    },
    calls,
    complete,
  };
}

/** Records arrive newest first: a job's earliest dispatch and approval end are the last seen. */
function note(job: JobTimes, record: AuditRecord): void {
  const { type, at } = record;
  if (type === 'job.submitted') job.submitted = at;
  else if (type === 'job.decided' && typeof record.data.effect === 'string') job.decision = record.data.effect;
  else if (type === 'job.dispatched') job.dispatched = at;
  else if (type === 'job.approval_required') job.approvalAsked = at;
  else if (type === 'job.scheduled') job.approvalEnded = at;
  else if (TERMINAL.has(type)) job.ended = at;
}

/** Nearest-rank percentile (sorts `sample`); null for an empty one. */
export function percentile(sample: number[], p: number): number | null {
  if (sample.length === 0) return null;
  sample.sort((a, b) => a - b);
  return sample[Math.max(0, Math.ceil((p / 100) * sample.length) - 1)];
}
