import type { Logger } from '../../src/log.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import type { PrunedData, RedisAuditStore } from './audit-store.ts';

/** Only a signed checkpoint can anchor what follows it (src/audit/checkpoint.ts). */
const CHECKPOINT_TYPE = 'audit.checkpoint';

/** `audit.retention` in distributed mode: what each replica trims of the chains in Redis, and how often. */
export interface RedisRetentionOptions {
  /** Records older than this (ms, by `at`) are removed, up to a checkpoint all records before which are that old. */
  maxAgeMs?: number;
  /** The oldest records are removed, up to a checkpoint, until the chain's lines hold at most this many bytes. */
  maxBytes?: number;
  /** The lowest seq every audit sink has delivered of the tenant's chain: records after it are never removed. */
  delivered?: (tenant: string) => Promise<number>;
  /** How often it runs (ms); it also runs at start. */
  intervalMs: number;
  /**
   * A lock the replicas share, so one of them reads the chains at a time (each run reads a chain's list); a run that
   * does not get it does nothing. Absent: every run goes on (the trim script alone keeps concurrent runs apart).
   */
  lease?: RetentionLease;
  now: () => number;
  log?: Logger;
}

/** A lock held for `ttlMs` from each acquire; renewed by the holder's next run. */
export interface RetentionLease {
  acquire(ttlMs: number): Promise<boolean>;
  release(): Promise<void>;
}

/** How long the lease outlives the run that took it: a replica that stopped is replaced after this many intervals. */
const LEASE_INTERVALS = 3;

/** A checkpoint that could anchor the chain: its line, and what removing the records up to it takes. */
interface Candidate {
  seq: number;
  line: string;
  /** Bytes of the lines up to it, from the first kept one (each with its newline). */
  bytesThrough: number;
  /** Whether every record up to it is older than maxAge. */
  old: boolean;
}

/**
 * Retention of the Redis chains: at start and every `intervalMs`, for each tenant, picks the signed checkpoint to
 * anchor the chain on and has the store remove the records up to it (RedisAuditStore.trim, one script). The replica
 * that holds the lease runs it; and the script compares the head and refuses an anchor at or before the current one,
 * so replicas running it at once (a lease handed over mid-run) remove each record once and record one `audit.pruned`.
 */
export class RedisAuditRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Tenants retention held back for at its last run: the warning is logged when it starts holding back. */
  private readonly held = new Set<string>();

  constructor(
    private readonly store: RedisAuditStore,
    private readonly options: RedisRetentionOptions,
  ) {}

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Waits for a run under way: the store closes after it. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.options.lease?.release().catch(() => undefined); // it expires anyway
  }

  /** One pass over every tenant; what fails is logged and tried again at the next run. */
  async run(): Promise<void> {
    const { lease, intervalMs } = this.options;
    if (lease && !(await lease.acquire(LEASE_INTERVALS * intervalMs))) return;
    for (const tenant of await this.store.tenants()) {
      if (this.stopped) return;
      try {
        await this.prune(tenant);
      } catch (err) {
        this.options.log?.error(`audit retention failed for tenant ${tenant}; it is tried again at the next run`, { error: (err as Error).message });
      }
    }
  }

  /** Removes what retention allows of one chain; the `audit.pruned` data when it removed records. */
  async prune(tenant: string): Promise<PrunedData | undefined> {
    const { maxBytes, delivered, now, log } = this.options;
    const deliveredSeq = delivered ? await delivered(tenant) : Infinity;
    const { candidates, total, fromSeq, jobs, sessions } = await this.scan(tenant);
    const pick = (limit: number) => {
      const eligible = candidates.filter((c) => c.seq <= limit);
      const byAge = eligible.findLast((c) => c.old);
      const byBytes = maxBytes === undefined || total <= maxBytes ? undefined : (eligible.find((c) => total - c.bytesThrough <= maxBytes) ?? eligible.at(-1));
      const anchor = byAge && byBytes ? (byAge.seq > byBytes.seq ? byAge : byBytes) : (byAge ?? byBytes);
      return anchor && { anchor, reason: [...(byAge ? ['maxAge'] : []), ...(byBytes ? ['maxBytes'] : [])].join(',') };
    };
    const chosen = pick(deliveredSeq);
    const wanted = pick(Infinity);
    if (wanted && (chosen?.anchor.seq ?? 0) < wanted.anchor.seq) {
      if (!this.held.has(tenant)) log?.warn(`audit retention held back for tenant ${tenant}: an audit sink has delivered up to seq ${deliveredSeq}, retention would remove up to seq ${wanted.anchor.seq}`);
      this.held.add(tenant);
    } else if (this.held.delete(tenant)) {
      log?.info(`audit retention for tenant ${tenant} is no longer held back by an audit sink`);
    }
    if (!chosen || fromSeq === undefined) return undefined;
    const { anchor, reason } = chosen;
    const data: PrunedData = {
      records: anchor.seq - fromSeq + 1,
      bytes: anchor.bytesThrough,
      fromSeq,
      throughSeq: anchor.seq,
      anchor: { seq: anchor.seq, hash: (JSON.parse(anchor.line) as AuditRecord).hash },
      reason,
    };
    if (!(await this.store.trim(tenant, anchor, data, now()))) return undefined;
    const removed = (firsts: Map<string, number>) => [...firsts].flatMap(([name, seq]) => (seq <= anchor.seq ? [name] : []));
    await this.store.trimIndex(tenant, removed(jobs), removed(sessions), anchor.seq);
    log?.info(`audit retention removed ${data.records} records of tenant ${tenant} (seq ${fromSeq}…${anchor.seq}, ${data.bytes} bytes); the chain is anchored at seq ${anchor.seq}`);
    return data;
  }

  /**
   * The chain's checkpoints that could anchor it, and its lines' bytes; with `maxAge` alone, only up to the first
   * young record (no later checkpoint can qualify). Also the first seq of each job and session met, for their index
   * lists once the records up to the anchor are gone.
   */
  private async scan(tenant: string) {
    const { maxAgeMs, maxBytes, now } = this.options;
    const cutoff = maxAgeMs === undefined ? -Infinity : now() - maxAgeMs;
    const candidates: Candidate[] = [];
    const jobs = new Map<string, number>();
    const sessions = new Map<string, number>();
    let total = 0;
    let fromSeq: number | undefined;
    let allOld = true;
    for await (const { line } of this.store.lines(tenant)) {
      const record = JSON.parse(line) as AuditRecord;
      fromSeq ??= record.seq;
      if (record.jobId !== undefined && !jobs.has(record.jobId)) jobs.set(record.jobId, record.seq);
      if (record.type === 'job.submitted' && typeof record.data.session === 'string' && !sessions.has(record.data.session)) sessions.set(record.data.session, record.seq);
      total += Buffer.byteLength(line) + 1;
      allOld &&= record.at <= cutoff;
      if (record.type === CHECKPOINT_TYPE) candidates.push({ seq: record.seq, line, bytesThrough: total, old: allOld });
      if (!allOld && maxBytes === undefined) break;
    }
    return { candidates, total, fromSeq, jobs, sessions };
  }

  private tick(): void {
    if (this.running || this.stopped) return;
    this.running = this.run()
      .catch((err: Error) => this.options.log?.error('audit retention could not run; it is tried again at the next run', { error: err.message }))
      .finally(() => (this.running = undefined));
  }
}
