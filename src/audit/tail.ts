import type { AuditStore } from '../ports.ts';
import type { AuditRecord } from '../protocol/audit-record.ts';
import { CallAssembly, matcher, type AuditCall, type AuditFilter, type AuditQueries } from './query.ts';

/** Hears a writer's appends: the tenant and the records just stored, oldest first. Must not throw, nor block. */
export type AppendListener = (tenant: string, records: readonly AuditRecord[]) => void;

/** Where the appends of this process can be heard (the chain writer). */
export interface AppendFeed {
  listen(listener: AppendListener): () => void;
}

export interface AuditTailOptions {
  /**
   * Where new records come from: this process's chain writer (embedded mode: it is the only writer of the calls),
   * or a chain read forward from the last seq seen (distributed mode: every replica appends to the one chain).
   * With a `reader`, what another process appended between two of the writer's appends (the CLI's approvals) is read
   * from the chain and delivered before them.
   */
  source: { pushed: AppendFeed; reader?: Pick<AuditStore, 'read'> } | { polled: Pick<AuditStore, 'read' | 'head'>; everyMs?: number };
  /** To fetch the records of a job that began before the tail did, when its later records arrive. */
  queries: Pick<AuditQueries, 'job'>;
  /** Jobs followed, the most recent ones; beyond this the oldest are forgotten. */
  maxOpenJobs?: number;
  /** Reports a failed poll of the chain (it is retried at the next tick). */
  onError?: (err: unknown) => void;
}

export interface TailSubscription {
  /** Calls whose records just arrived, each as the audit now tells it (a call appears again as it moves on). */
  (calls: AuditCall[]): void;
}

interface Watcher {
  accepts: (call: AuditCall) => boolean;
  deliver: TailSubscription;
}

/** One tenant's tail, alive while someone watches it. */
interface TenantTail {
  watchers: Set<Watcher>;
  /** The calls followed, the most recent ones, as assembled so far (not their records). */
  open: Map<string, CallAssembly>;
  queued: AuditRecord[];
  scheduled: boolean;
  /** Jobs whose beginning is being read from the store, with their records that arrived meanwhile. */
  lookups: Map<string, AuditRecord[]>;
  /** The next seq expected (polled mode: to read; pushed mode: to hear), once known, and the poll timer. */
  next?: number;
  /** Pushed mode: a gap being read from the chain; what is heard meanwhile waits behind it. */
  filling?: Promise<void>;
  timer?: NodeJS.Timeout;
  polling?: boolean;
}

const MAX_LOOKUPS = 64;
const DEFAULT_POLL_MS = 200;

/**
 * The live tail of each tenant's audit chain as calls: one per tenant however many watch it, started by the first
 * watcher and stopped by the last. Records are assembled into calls as the audit query does (`callOf`), each
 * watcher's filter applied here. The writer only queues records for a later tick: a watcher never slows a call,
 * and when nobody watches an append costs one map lookup.
 */
export class AuditTail {
  private readonly tails = new Map<string, TenantTail>();
  private unlisten: (() => void) | undefined;
  private readonly maxOpen: number;

  constructor(private readonly options: AuditTailOptions) {
    this.maxOpen = options.maxOpenJobs ?? 5_000;
  }

  /** Calls of `tenant` passing `filter` from now on, delivered in batches; returns the unsubscribe. */
  subscribe(tenant: string, filter: AuditFilter, deliver: TailSubscription): () => void {
    let tail = this.tails.get(tenant);
    if (!tail) {
      tail = { watchers: new Set(), open: new Map(), queued: [], scheduled: false, lookups: new Map() };
      this.tails.set(tenant, tail);
      this.start(tenant, tail);
    }
    const watcher: Watcher = { accepts: matcher(filter), deliver };
    tail.watchers.add(watcher);
    return () => {
      tail.watchers.delete(watcher);
      if (tail.watchers.size > 0) return;
      clearInterval(tail.timer);
      this.tails.delete(tenant);
      if (this.tails.size === 0) {
        this.unlisten?.();
        this.unlisten = undefined;
      }
    };
  }

  /** How many tenants are followed, and by how many watchers: for tests and the bench. */
  get watching(): number {
    let n = 0;
    for (const tail of this.tails.values()) n += tail.watchers.size;
    return n;
  }

  close(): void {
    for (const tail of this.tails.values()) clearInterval(tail.timer);
    this.tails.clear();
    this.unlisten?.();
    this.unlisten = undefined;
  }

  private start(tenant: string, tail: TenantTail): void {
    const { source } = this.options;
    if ('pushed' in source) {
      this.unlisten ??= source.pushed.listen((t, records) => {
        const listening = this.tails.get(t);
        if (listening) this.heard(t, listening, records, source.reader);
      });
      return;
    }
    const everyMs = source.everyMs ?? DEFAULT_POLL_MS;
    tail.timer = setInterval(() => void this.poll(tenant, tail, source.polled), everyMs);
    tail.timer.unref();
    void this.poll(tenant, tail, source.polled);
  }

  /** Reads what the chain gained since the last poll; the first poll only learns where the chain ends. */
  private async poll(tenant: string, tail: TenantTail, chain: Pick<AuditStore, 'read' | 'head'>): Promise<void> {
    if (tail.polling) return;
    tail.polling = true;
    try {
      if (tail.next === undefined) {
        tail.next = (await chain.head(tenant)).seq + 1;
        return;
      }
      const records: AuditRecord[] = [];
      for await (const record of chain.read(tenant, { fromSeq: tail.next })) records.push(record);
      if (records.length === 0) return;
      tail.next = records[records.length - 1].seq + 1;
      if (this.tails.get(tenant) === tail) this.enqueue(tenant, tail, records);
    } catch (err) {
      this.options.onError?.(err);
    } finally {
      tail.polling = false;
    }
  }

  /**
   * Records the writer appended. Records before them that it did not append (another process's) are read from the
   * chain first; anything heard while such a read runs waits behind it, so calls are delivered in chain order.
   */
  private heard(tenant: string, tail: TenantTail, records: readonly AuditRecord[], reader: Pick<AuditStore, 'read'> | undefined): void {
    if (records.length === 0) return;
    const first = records[0].seq;
    const missed = reader && tail.next !== undefined && first > tail.next ? tail.next : undefined;
    tail.next = records[records.length - 1].seq + 1;
    if (missed === undefined && !tail.filling) return this.enqueue(tenant, tail, records);
    const filling: Promise<void> = (tail.filling ?? Promise.resolve())
      .then(async () => {
        if (missed === undefined) return;
        const between: AuditRecord[] = [];
        for await (const record of reader!.read(tenant, { fromSeq: missed })) {
          if (record.seq >= first) break;
          between.push(record);
        }
        if (this.tails.get(tenant) === tail) this.enqueue(tenant, tail, between);
      })
      .catch((err: unknown) => this.options.onError?.(err))
      .finally(() => {
        if (this.tails.get(tenant) === tail) this.enqueue(tenant, tail, records);
        if (tail.filling === filling) tail.filling = undefined;
      });
    tail.filling = filling;
  }

  private enqueue(tenant: string, tail: TenantTail, records: readonly AuditRecord[]): void {
    for (const record of records) tail.queued.push(record);
    if (tail.scheduled) return;
    tail.scheduled = true;
    setImmediate(() => {
      tail.scheduled = false;
      const batch = tail.queued;
      tail.queued = [];
      this.deliver(tail, this.follow(tenant, tail, batch));
    });
  }

  /** Adds records to their open jobs; the calls they touched, assembled. */
  private follow(tenant: string, tail: TenantTail, records: readonly AuditRecord[]): AuditCall[] {
    const touched = new Set<string>();
    for (const record of records) {
      const { jobId } = record;
      if (jobId === undefined) continue;
      if (record.type === 'job.submitted') {
        this.remember(tail, jobId, new CallAssembly(record));
      } else {
        const job = tail.open.get(jobId);
        if (job) job.add(record);
        else {
          this.lookUp(tenant, tail, jobId, record);
          continue;
        }
      }
      touched.add(jobId);
    }
    const calls: AuditCall[] = [];
    // Copies: a watcher may hold a call while its job moves on.
    for (const jobId of touched) {
      const job = tail.open.get(jobId);
      if (job) calls.push({ ...job.call });
    }
    return calls;
  }

  /** Follows a job; ended jobs stay too (records such as `job.result_handed` come after the end) until crowded out. */
  private remember(tail: TenantTail, jobId: string, job: CallAssembly): void {
    tail.open.set(jobId, job);
    if (tail.open.size > this.maxOpen) tail.open.delete(tail.open.keys().next().value!);
  }

  /**
   * A record of a job that began before the tail: its beginning is read from the store once, and the job followed
   * from there. Records of it arriving meanwhile wait for the lookup; a flood of such jobs is bounded.
   */
  private lookUp(tenant: string, tail: TenantTail, jobId: string, record: AuditRecord): void {
    const held = tail.lookups.get(jobId);
    if (held) {
      held.push(record);
      return;
    }
    if (tail.lookups.size >= MAX_LOOKUPS) return;
    tail.lookups.set(jobId, [record]);
    this.options.queries.job(tenant, jobId).then(
      (found) => {
        const waiting = tail.lookups.get(jobId) ?? [];
        tail.lookups.delete(jobId);
        if (!found || this.tails.get(tenant) !== tail) return;
        const seen = found.records.at(-1)?.seq ?? 0;
        const job = new CallAssembly(found.records[0]);
        for (const r of [...found.records, ...waiting.filter((w) => w.seq > seen)]) job.add(r);
        this.remember(tail, jobId, job);
        this.deliver(tail, [{ ...job.call }]);
      },
      () => tail.lookups.delete(jobId),
    );
  }

  private deliver(tail: TenantTail, calls: AuditCall[]): void {
    if (calls.length === 0) return;
    for (const watcher of tail.watchers) {
      const mine = calls.filter(watcher.accepts);
      if (mine.length > 0) watcher.deliver(mine);
    }
  }
}
