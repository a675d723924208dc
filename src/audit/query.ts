import type { AuditIndex, AuditStore } from '../ports.ts';
import type { AuditRecord } from '../protocol/audit-record.ts';
import { GatewayError } from '../errors.ts';
import { compileGlob } from '../kernel/glob.ts';

/**
 * How a call ended, from its job's terminal record: `succeeded`, `failed` (Gatehouse or the upstream could not
 * serve it), `denied` (the policy, a constraint, a limit or its approval), `cancelled`, `timeout`, `unknown`
 * (`job.outcome_unknown`: a run was cut off while it was dispatched) or `pending` (no terminal record yet, or a
 * call that returned while its approval waits).
 */
export const OUTCOMES = ['succeeded', 'failed', 'denied', 'cancelled', 'timeout', 'unknown', 'pending'] as const;
export type CallOutcome = (typeof OUTCOMES)[number];

const OUTCOME_OF: Record<string, CallOutcome> = {
  'job.succeeded': 'succeeded',
  'job.failed': 'failed',
  'job.denied': 'denied',
  'job.cancelled': 'cancelled',
  'job.timeout': 'timeout',
  'job.outcome_unknown': 'unknown',
};

/** One governed call as the audit trail tells it: assembled from its job's records. */
export interface AuditCall {
  jobId: string;
  tenant: string;
  /** When it was submitted (ms since the epoch). */
  at: number;
  session?: string;
  principal: string;
  server?: string;
  tool?: string;
  /** The kernel's effect, absent when the call ended before a decision. */
  decision?: string;
  ruleIds: string[];
  outcome: CallOutcome;
  /** From `job.submitted` to the terminal record; absent while pending. */
  durationMs?: number;
  /** The seq of its `job.submitted` record. */
  seq: number;
  /** The client that sent it, as its session said (recorded since the console; older records have none). */
  client?: CallClient;
  /** The human it waited for, when the decision asked for one. */
  approval?: CallApproval;
}

export interface CallClient {
  name?: string;
  version?: string;
  /** `legacy` (2025 sessions) or `modern` (2026-07-28, stateless). */
  era?: string;
}

export interface CallApproval {
  id?: string;
  /** How the call reached its human: `hold`, `elicitation`, `pending`, `task`, … (the last channel it moved to). */
  channel?: string;
  /** `approved`, `denied`, `expired`, `cancelled`; absent while it waits. */
  state?: string;
  /** Who decided (the last approver's principal). */
  by?: string;
  /** From the approval's creation to its decision (ms); absent while it waits. */
  waitMs?: number;
}

export interface AuditCallDetail extends AuditCall {
  /** Every record of the job, oldest first, hashes included. */
  records: AuditRecord[];
}

export interface AuditFilter {
  session?: string;
  principal?: string;
  /** A glob over the tool name (`*` any run of characters, `?` one). */
  tool?: string;
  decision?: string;
  outcome?: CallOutcome;
  /** ms since the epoch, inclusive. */
  since?: number;
  /** ms since the epoch, exclusive. */
  until?: number;
}

export interface AuditPage {
  calls: AuditCall[];
  /** Pass back as `cursor` for the next (older) page; present on every full page, so the last may be empty. */
  next?: string;
}

/** What the HTTP front and the CLI need of the audit trail to show calls. */
export interface AuditQueries {
  calls(tenant: string, filter: AuditFilter, page: { limit: number; cursor?: string }): Promise<AuditPage>;
  job(tenant: string, jobId: string): Promise<AuditCallDetail | undefined>;
}

/** How far before a job's ULID time its `job.submitted` record may be (clocks of several writers, batching). */
const CLOCK_SLACK_MS = 60_000;
export const MAX_LIMIT = 1_000;

/**
 * Queries over a chain, newest call first. A store that keeps an index (AuditIndex) answers a session filter and a
 * job from it: the cost is the session's calls, or the job's records, whatever the chain's length. Otherwise, or
 * when the index cannot answer, the chain is read backwards, stopping as soon as the page is full (or `since` is
 * passed): a job's records all come after its `job.submitted`, so by the time the backward scan reaches that record
 * the call is whole. The cost of the scan is the records newer than the page's oldest call.
 */
export class AuditQuery implements AuditQueries {
  constructor(private readonly store: Pick<AuditStore, 'readBack'> & Partial<AuditIndex>) {}

  async calls(tenant: string, filter: AuditFilter, page: { limit: number; cursor?: string }): Promise<AuditPage> {
    const limit = page.limit;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new GatewayError('GH_ERR_INVALID_REQUEST', `limit must be a whole number from 1 to ${MAX_LIMIT}`);
    const before = page.cursor === undefined ? Infinity : cursorSeq(page.cursor);
    const matches = matcher(filter);
    if (filter.session !== undefined) {
      const indexed = await this.sessionPage(tenant, filter.session, matches, limit, before);
      if (indexed) return indexed;
    }
    const calls: AuditCall[] = [];
    for await (const { call } of this.scan(tenant)) {
      if (filter.since !== undefined && call.at < filter.since - CLOCK_SLACK_MS) break;
      if (call.seq >= before || !matches(call)) continue;
      calls.push(call);
      // A full page stops here, with a cursor, rather than read on for a match that may not exist (which would
      // read the whole chain when there is none): the page after the last may be empty.
      if (calls.length === limit) return { calls, next: `s${call.seq}` };
    }
    return { calls };
  }

  async job(tenant: string, jobId: string): Promise<AuditCallDetail | undefined> {
    const [indexed] = (await this.store.jobRecords?.(tenant, [jobId])) ?? [];
    if (indexed) {
      // The newest submission, as the scan finds it first.
      const start = indexed.findLastIndex((r) => r.type === 'job.submitted');
      if (start < 0) return undefined;
      const records = indexed.slice(start);
      return { ...callOf(records[0], records), records };
    }
    const born = ulidTime(jobId);
    for await (const { call, records } of this.scan(tenant, jobId)) {
      if (call.jobId === jobId) return { ...call, records };
      if (born !== undefined && call.at < born - CLOCK_SLACK_MS) break;
    }
    return undefined;
  }

  /**
   * A session's page from the index, or undefined when there is none or it cannot answer. Each call is assembled
   * as the scan does: from its `job.submitted` up to the job's next one, if it was submitted twice.
   */
  private async sessionPage(tenant: string, session: string, matches: (call: AuditCall) => boolean, limit: number, before: number): Promise<AuditPage | undefined> {
    const starts = (await this.store.sessionCalls?.(tenant, session))?.filter((start) => start.seq < before).reverse();
    if (!starts) return undefined;
    const jobs = new Map<string, AuditRecord[]>();
    const calls: AuditCall[] = [];
    // The jobs of a page's worth of calls at a time: one look at the index each.
    for (let i = 0; i < starts.length; i += limit) {
      const group = starts.slice(i, i + limit);
      const wanted = [...new Set(group.map((start) => start.jobId))].filter((jobId) => !jobs.has(jobId));
      const found = await this.store.jobRecords!(tenant, wanted);
      if (!found) return undefined;
      wanted.forEach((jobId, k) => jobs.set(jobId, found[k]));
      for (const { seq, jobId } of group) {
        const records = jobs.get(jobId)!;
        const from = records.findIndex((r) => r.seq === seq && r.type === 'job.submitted');
        if (from < 0) return undefined;
        const next = records.findIndex((r, k) => k > from && r.type === 'job.submitted');
        const own = records.slice(from, next < 0 ? undefined : next);
        const call = callOf(own[0], own);
        if (call.session !== session) return undefined;
        if (!matches(call)) continue;
        calls.push(call);
        if (calls.length === limit) return { calls, next: `s${call.seq}` };
      }
    }
    return { calls };
  }

  /** Calls newest first (by their `job.submitted`), each with its records; only `only`'s records are kept whole. */
  private async *scan(tenant: string, only?: string): AsyncIterable<{ call: AuditCall; records: AuditRecord[] }> {
    const later = new Map<string, AuditRecord[]>();
    for await (const record of this.store.readBack(tenant)) {
      const { jobId } = record;
      if (jobId === undefined) continue;
      if (record.type !== 'job.submitted') {
        const seen = later.get(jobId);
        if (seen) seen.push(record);
        else later.set(jobId, [record]);
        continue;
      }
      const after = later.get(jobId) ?? [];
      later.delete(jobId);
      const records = [record, ...after.reverse()];
      yield { call: callOf(record, records), records: only === undefined || only === jobId ? records : [] };
    }
  }
}

const APPROVAL_ENDS: Record<string, string> = { 'approval.approved': 'approved', 'approval.denied': 'denied', 'approval.expired': 'expired', 'approval.cancelled': 'cancelled' };

/** One call from its job's records, `job.submitted` first: what `/api/audit`, the CLI and the console show. */
export function callOf(submitted: AuditRecord, records: readonly AuditRecord[]): AuditCall {
  const assembly = new CallAssembly(submitted);
  for (const record of records) assembly.add(record);
  return assembly.call;
}

/**
 * A call assembled record by record: `callOf` for a whole job, and the console's live tail as the records arrive
 * (it keeps this, not the records).
 */
export class CallAssembly {
  readonly call: AuditCall;
  private approvalAt: number | undefined;

  constructor(submitted: AuditRecord) {
    const data = submitted.data;
    const call: AuditCall = { jobId: submitted.jobId!, tenant: submitted.tenant, at: submitted.at, principal: submitted.actor, ruleIds: [], outcome: 'pending', seq: submitted.seq };
    if (typeof data.session === 'string') call.session = data.session;
    if (typeof data.server === 'string') call.server = data.server;
    if (typeof data.tool === 'string') call.tool = data.tool;
    if (isObject(data.client)) call.client = data.client as CallClient;
    this.call = call;
  }

  /** Another record of the job (its own `job.submitted` changes nothing). */
  add(record: AuditRecord): void {
    const { call } = this;
    if (record.type === 'approval.created') {
      this.approvalAt = record.at;
      call.approval = { ...call.approval, ...(typeof record.data.approvalId === 'string' ? { id: record.data.approvalId } : {}) };
    } else if (record.type === 'job.approval_required' || record.type === 'job.approval_channel') {
      const channel = record.data.channel;
      call.approval = { ...call.approval, ...(typeof channel === 'string' ? { channel } : {}) };
    } else if (APPROVAL_ENDS[record.type]) {
      call.approval = { ...call.approval, state: APPROVAL_ENDS[record.type], by: record.actor, ...(this.approvalAt !== undefined ? { waitMs: record.at - this.approvalAt } : {}) };
    } else if (record.type === 'job.decided') {
      if (typeof record.data.effect === 'string') call.decision = record.data.effect;
      if (Array.isArray(record.data.ruleIds)) call.ruleIds = record.data.ruleIds.filter((r): r is string => typeof r === 'string');
    }
    const outcome = OUTCOME_OF[record.type];
    if (outcome && call.outcome === 'pending') {
      call.outcome = outcome;
      call.durationMs = record.at - call.at;
    }
  }
}

/** Whether a call passes a filter: the one test of the query and of the live feed. */
export function matcher(filter: AuditFilter): (call: AuditCall) => boolean {
  const tool = filter.tool === undefined ? undefined : compileGlob(filter.tool);
  return (call) =>
    (filter.session === undefined || call.session === filter.session) &&
    (filter.principal === undefined || call.principal === filter.principal) &&
    (tool === undefined || (call.tool !== undefined && tool(call.tool))) &&
    (filter.decision === undefined || call.decision === filter.decision) &&
    (filter.outcome === undefined || call.outcome === filter.outcome) &&
    (filter.since === undefined || call.at >= filter.since) &&
    (filter.until === undefined || call.at < filter.until);
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function cursorSeq(cursor: string): number {
  const seq = /^s([1-9]\d{0,15})$/.exec(cursor);
  if (!seq) throw new GatewayError('GH_ERR_INVALID_REQUEST', `not a cursor this query gave: "${cursor.slice(0, 40)}"`);
  return Number(seq[1]);
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** The milliseconds a ULID was made at, or undefined for an id that is not one. */
function ulidTime(id: string): number | undefined {
  if (!/^[0-9A-HJKMNP-TV-Z]{26}$/i.test(id)) return undefined;
  let ms = 0;
  for (const c of id.slice(0, 10).toUpperCase()) ms = ms * 32 + CROCKFORD.indexOf(c);
  return ms;
}

/** Parses an outcome filter, refusing a value that is none. */
export function outcomeOf(text: string): CallOutcome {
  if (!(OUTCOMES as readonly string[]).includes(text)) throw new GatewayError('GH_ERR_INVALID_REQUEST', `outcome must be one of ${OUTCOMES.join(', ')}`);
  return text as CallOutcome;
}
