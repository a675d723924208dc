import type { AuditSinkSender, AuditStore, Clock, JobLedger, SinkCursors, SinkLag } from '../ports.ts';
import type { AuditRecord } from '../protocol/audit-record.ts';
import type { Logger } from '../log.ts';
import type { RecentRecords } from './recent-records.ts';

export interface SinkForwarderOptions {
  sender: AuditSinkSender;
  /** The chains, read behind the append path: the forwarder never touches a call. */
  chains: Pick<AuditStore, 'read' | 'head' | 'tenants'>;
  cursors: SinkCursors;
  /** The records this process appended last: a sink that keeps up takes its batches there, not from the store. */
  recent?: RecentRecords;
  /**
   * Where the sink's lease is taken (the job ledger's locks: in the process in embedded mode, Redis across
   * replicas), so that one process at a time forwards a sink. `holder` names this process.
   */
  lease: Pick<JobLedger, 'acquireLock' | 'releaseLock'>;
  holder: string;
  clock: Clock;
  log: Logger;
  /** Records per batch, at most. */
  batchSize: number;
  /** The wait, once caught up, before looking for new records (ms). */
  pollIntervalMs: number;
  /** How long one send may take (ms): the lease outlives it, so no other holder sends meanwhile. */
  timeoutMs: number;
  /** The wait after a failure: `initialMs` doubled per consecutive failure, at most `maxMs`, full jitter (ms). */
  retry: { initialMs: number; maxMs: number };
  random?: () => number;
}

/** How long failures go unsaid again after one was logged at warn (ms): a dead sink must not flood the log. */
const REPEAT_WARNING_MS = 60_000;

/**
 * Forwards one sink: for each tenant, reads the records after the sink's cursor from the store in batches, sends
 * each batch and only then moves the cursor, so a record is delivered at least once and in chain order (a crash
 * between a send and its cursor write sends that batch again). A batch that fails is sent again after a backoff,
 * for as long as it takes: nothing is skipped, and the calls, which only append, never wait for a sink.
 */
export class SinkForwarder {
  private readonly stopping = new AbortController();
  /** Ends the current wait between rounds early: `stop` wants the drain to start now. */
  private napping: AbortController | undefined;
  private running: Promise<void> | undefined;
  /** Per tenant: the last head seen, the cursor, and the time of the oldest record read and not yet delivered. */
  private readonly progress = new Map<string, { head: number; cursor: number; oldestAt?: number }>();
  private holding = false;
  private failures = 0;
  private lastError: string | undefined;
  private lastSuccessAt: number | undefined;
  private failingSince: number | undefined;
  private warnedAt = -Infinity;
  /** Once set, the loop stops when every tenant is caught up, or at this time (ms). */
  private drainUntil: number | undefined;
  private readonly leaseName: string;
  private readonly leaseMs: number;

  constructor(private readonly options: SinkForwarderOptions) {
    this.leaseName = `audit-sink:${options.sender.name}`;
    // Longer than a send can take, with room for a slow store: a holder that died frees it after this.
    this.leaseMs = Math.max(15_000, 3 * options.timeoutMs);
  }

  get name(): string {
    return this.options.sender.name;
  }

  start(): void {
    this.running ??= this.run();
  }

  /**
   * Delivers what it can within `drainMs` (what the store holds now, and while the lease is held), then stops and
   * frees the lease. What is left is delivered from the cursor at the next start.
   */
  async stop(drainMs: number): Promise<void> {
    if (!this.running) return;
    this.drainUntil = this.options.clock.now() + drainMs;
    this.napping?.abort();
    const timer = setTimeout(() => this.stopping.abort(), drainMs);
    try {
      await this.running;
    } finally {
      clearTimeout(timer);
      this.stopping.abort();
    }
    if (this.holding) await this.options.lease.releaseLock(this.leaseName, this.options.holder).catch(() => undefined);
  }

  /** What this process knows of the sink's lag: nothing while another process holds the sink. */
  lag(): SinkLag[] {
    if (!this.holding) return [];
    const now = this.options.clock.now();
    return [...this.progress].map(([tenant, p]) => ({
      sink: this.name,
      tenant,
      records: Math.max(0, p.head - p.cursor),
      oldestSeconds: p.head > p.cursor && p.oldestAt !== undefined ? Math.max(0, (now - p.oldestAt) / 1000) : 0,
    }));
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      let pause = this.options.pollIntervalMs;
      try {
        if (await this.holdLease()) {
          const delivered = await this.round(signal);
          if (this.drainUntil !== undefined) {
            if (delivered === 'none') return; // drained: nothing was left
            pause = 0;
          } else if (delivered === 'full') {
            pause = 0; // a full batch: more is likely waiting. Otherwise the next poll takes what came meanwhile, in one read.
          }
        } else if (this.drainUntil !== undefined) {
          return; // another process forwards this sink
        }
      } catch (err) {
        if (signal.aborted) return;
        this.failed(err);
        pause = this.backoff();
      }
      if (pause > 0) await this.nap(pause);
    }
  }

  private async nap(ms: number): Promise<void> {
    const napping = (this.napping = new AbortController());
    await this.options.clock.sleep(ms, AbortSignal.any([this.stopping.signal, napping.signal])).catch(() => undefined);
    this.napping = undefined;
  }

  /** Takes or renews the lease; a process that loses it forgets the lag it reported. */
  private async holdLease(): Promise<boolean> {
    const held = await this.options.lease.acquireLock(this.leaseName, this.options.holder, this.leaseMs);
    if (held && !this.holding) this.progress.clear(); // another holder moved the cursors meanwhile
    this.holding = held;
    return held;
  }

  /** One batch for each tenant that is behind; resolves to whether none was delivered, some, or a full batch. */
  private async round(signal: AbortSignal): Promise<'none' | 'some' | 'full'> {
    const { chains, cursors, sender, batchSize } = this.options;
    let delivered: 'none' | 'some' | 'full' = 'none';
    for (const tenant of await chains.tenants()) {
      if (signal.aborted) break;
      let p = this.progress.get(tenant);
      if (!p) this.progress.set(tenant, (p = { head: 0, cursor: await cursors.get(this.name, tenant) }));
      p.head = (await chains.head(tenant)).seq;
      if (p.head <= p.cursor) continue;
      const batch = this.options.recent?.from(tenant, p.cursor + 1, batchSize) ?? (await readBatch(chains, tenant, p.cursor + 1, batchSize));
      if (batch.length === 0) continue;
      p.oldestAt = batch[0].at;
      // The lease was renewed before this round; renewing it again makes it outlast this send.
      if (!(await this.holdLease())) return delivered;
      await sender.send(batch, AbortSignal.any([signal, AbortSignal.timeout(this.options.timeoutMs)]));
      const last = batch[batch.length - 1].seq;
      await cursors.set(this.name, tenant, last);
      p.cursor = last;
      p.oldestAt = undefined;
      if (delivered !== 'full') delivered = batch.length === batchSize ? 'full' : 'some';
      this.succeeded();
    }
    return delivered;
  }

  private succeeded(): void {
    const now = this.options.clock.now();
    if (this.failingSince !== undefined) {
      this.options.log.info(`audit sink ${this.name} delivers again`, { sink: this.name, failedForMs: now - this.failingSince, failures: this.failures, lastError: this.lastError });
    }
    this.failures = 0;
    this.failingSince = undefined;
    this.warnedAt = -Infinity;
    this.lastSuccessAt = now;
  }

  private failed(err: unknown): void {
    const now = this.options.clock.now();
    this.failures++;
    this.failingSince ??= now;
    // The sender's messages name the receiver by its origin only; nothing else of the error is logged.
    this.lastError = (err as Error)?.message ?? String(err);
    if (now - this.warnedAt < REPEAT_WARNING_MS) return;
    this.warnedAt = now;
    this.options.log.warn(`audit sink ${this.name} is failing; its records wait in the audit trail and are sent when it accepts them`, {
      sink: this.name,
      error: this.lastError,
      failures: this.failures,
      ...(this.lastSuccessAt !== undefined ? { lastSuccessAt: new Date(this.lastSuccessAt).toISOString() } : {}),
    });
  }

  /** Exponential, capped, with full jitter: replicas and sinks that failed together do not retry together. */
  private backoff(): number {
    const { initialMs, maxMs } = this.options.retry;
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(this.failures - 1, 30));
    return Math.max(1, Math.round(ceiling * (this.options.random ?? Math.random)()));
  }
}

/** Up to `limit` records of a chain from `fromSeq`, oldest first. */
async function readBatch(chains: Pick<AuditStore, 'read'>, tenant: string, fromSeq: number, limit: number): Promise<AuditRecord[]> {
  const batch: AuditRecord[] = [];
  for await (const record of chains.read(tenant, { fromSeq })) {
    batch.push(record);
    if (batch.length >= limit) break;
  }
  return batch;
}
