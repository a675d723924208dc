import type { AuditEvent } from '../protocol/audit-record.ts';
import type { AuditWriter } from './chain-writer.ts';
import type { Logger } from '../log.ts';
import { GatewayError } from '../errors.ts';

export interface AuditTrailOptions {
  /** How long events nobody waits for may sit in memory before they are written (ms). Default 20. */
  flushIntervalMs?: number;
  /**
   * How long `written()` waits for a write before it gives up with GH_ERR_AUDIT_UNAVAILABLE (ms), and at `close`
   * how long unwritten events are retried before they are spilled. Default 2 000 (config `audit.writeTimeout`).
   */
  writeTimeoutMs?: number;
  /** While writes fail, past this many unwritten events new work is refused at once (see `accepting`). Default 1 000. */
  maxBacklog?: number;
  /** Called when a write fails; the events stay buffered and are tried again, sooner at first. */
  onError?: (err: unknown) => void;
  /** Where the events still unwritten at `close` go, when retrying did not help; resolves to where they went. */
  spill?: (events: readonly AuditEvent[]) => Promise<string>;
  /** Where `close` says, at error level, what could not be written. */
  log?: Logger;
  /** Milliseconds now; the system clock when not given. */
  now?: () => number;
}

const DEFAULT_WRITE_TIMEOUT_MS = 2_000;
const DEFAULT_MAX_BACKLOG = 1_000;
/** A failed write is tried again after 50 ms, then twice as long each time, at most a second apart. */
const FIRST_RETRY_MS = 50;
const MAX_RETRY_MS = 1_000;
const RESOLVED: Promise<void> = Promise.resolve();

interface Waiter {
  tenant: string;
  /** Written once this many of the tenant's events are stored. */
  upTo: number;
  /** When it gives up (ms). */
  until: number;
  resolve(): void;
  reject(err: GatewayError): void;
}

/**
 * The audit trail the core writes to. `record()` only buffers: what nobody waits for is written by a timer. What
 * must be on record before something happens (a job's decision, before the job is dispatched) is waited for with
 * `written()`, a group commit: the first waiter starts a write as soon as this turn of the event loop has taken in
 * the calls that came with it (they share that write), and everyone who comes while it runs is written together
 * by the next one. One write at a time keeps each tenant's chain in order; a batch the writer fails to store is
 * kept and tried again, ahead of what was recorded since, so nothing is lost or reordered.
 */
export class AuditTrail {
  private buffers = new Map<string, AuditEvent[]>();
  /** Events recorded, and events stored, per tenant since the trail started: a waiter waits for the second to reach the first. */
  private readonly recorded = new Map<string, number>();
  private readonly stored = new Map<string, number>();
  private waiters: Waiter[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  /** A write for waiters, due once this turn of the event loop has taken in every call that arrived with them. */
  private due: NodeJS.Immediate | undefined;
  private writeStartedAt = 0;
  /** Events handed to the writer and not yet stored: still backlog until the write succeeds. */
  private inFlight = 0;
  /** Consecutive failed writes; 0 once one succeeds. */
  private failures = 0;
  /** Set when a waiter ran out of time or a write hung past the timeout; cleared by the next write that succeeds. */
  private gaveUp = false;
  private closed = false;
  private readonly flushIntervalMs: number;
  private readonly writeTimeoutMs: number;
  private readonly now: () => number;

  constructor(
    private readonly writer: AuditWriter,
    private readonly options: AuditTrailOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 20;
    this.writeTimeoutMs = options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS;
    this.now = options.now ?? Date.now;
  }

  /** Events stored since the trail started, every tenant's (what /metrics counts as appended). */
  get storedEvents(): number {
    let total = 0;
    for (const n of this.stored.values()) total += n;
    return total;
  }

  /** Events recorded but not yet stored. */
  get backlog(): number {
    let n = this.inFlight;
    for (const events of this.buffers.values()) n += events.length;
    return n;
  }

  /**
   * False from the first failed write until one succeeds, and while a write hangs past the timeout: what
   * `/healthz` reports, so a load balancer stops sending work at once.
   */
  get healthy(): boolean {
    return this.failures === 0 && !this.gaveUp;
  }

  /**
   * Whether new calls should start. False once a caller waited the whole timeout in vain (the trail cannot write,
   * so a new call would only wait and be refused), and while writes fail with `maxBacklog` events unwritten:
   * nothing may run that the trail cannot record. A write that succeeds makes it true again.
   */
  get accepting(): boolean {
    return !this.gaveUp && !(this.failures > 0 && this.backlog >= (this.options.maxBacklog ?? DEFAULT_MAX_BACKLOG));
  }

  record(event: AuditEvent): void {
    let buffer = this.buffers.get(event.tenant);
    if (!buffer) this.buffers.set(event.tenant, (buffer = []));
    buffer.push(event);
    this.recorded.set(event.tenant, (this.recorded.get(event.tenant) ?? 0) + 1);
    // While writes fail, the retry timer is the only one: new events do not make the broken disk tried sooner.
    if (this.failures === 0) this.schedule(this.flushIntervalMs);
  }

  /**
   * Resolves once every event of `tenant` recorded so far is stored (the file append returned, Redis
   * acknowledged). Rejects with GH_ERR_AUDIT_UNAVAILABLE when that has not happened within the write timeout.
   */
  written(tenant: string): Promise<void> {
    const upTo = this.recorded.get(tenant) ?? 0;
    if ((this.stored.get(tenant) ?? 0) >= upTo) return RESOLVED;
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ tenant, upTo, until: this.now() + this.writeTimeoutMs, resolve, reject });
      this.watch();
      // While writes fail, the retry timer tries again: a waiter does not hammer a broken disk.
      if (!this.writing && this.failures === 0) this.startSoon();
    });
  }

  /** Writes everything recorded so far. Concurrent callers share one write. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.buffers.size === 0) return;
    return this.startWrite();
  }

  /**
   * Writes what is buffered and stops. A write that fails is retried for the write timeout; what still could not be
   * written is then spilled (see `spill`), said at error level with its count, and the close rejects with
   * GH_ERR_AUDIT_UNAVAILABLE: audit events never vanish quietly.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.clearTimers();
    const until = this.now() + this.writeTimeoutMs;
    for (;;) {
      await this.flush();
      if (this.backlog === 0 || this.now() >= until) break;
      await new Promise((r) => setTimeout(r, this.retryMs()));
    }
    // Only a chain written whole gets its closing checkpoint; one that fails to sign loses no event, so it is said, not thrown.
    if (this.backlog === 0 && this.writer.seal) {
      await this.writer.seal().catch((err: unknown) => this.options.log?.error('could not write the closing audit checkpoint', { error: (err as Error)?.message }));
    }
    await this.writer.close();
    if (this.backlog === 0) return;
    await this.lose();
  }

  /**
   * Starts a write for waiters after the I/O of this turn of the event loop: an append that takes microseconds
   * would otherwise end before the next request of the same turn is read, and each call would pay for its own.
   */
  private startSoon(): void {
    this.due ??= setImmediate(() => {
      this.due = undefined;
      if (!this.writing && this.failures === 0 && this.buffers.size > 0) void this.startWrite();
    });
  }

  private startWrite(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const batch = this.buffers;
    this.buffers = new Map();
    for (const events of batch.values()) this.inFlight += events.length;
    this.writeStartedAt = this.now();
    this.watch();
    const writing = this.writer.write(batch).then(
      () => this.settle(batch, undefined),
      (err: unknown) => this.settle(batch, err),
    );
    this.writing = writing;
    return writing;
  }

  private settle(batch: ReadonlyMap<string, AuditEvent[]>, err: unknown): void {
    this.inFlight = 0;
    this.writing = undefined;
    const failed = err === undefined ? undefined : new Set((err as { failed?: string[] }).failed ?? batch.keys());
    for (const [tenant, events] of batch) {
      if (failed?.has(tenant)) {
        // Put back what was not stored, ahead of anything recorded meanwhile.
        const later = this.buffers.get(tenant);
        this.buffers.set(tenant, later ? [...events, ...later] : events);
      } else {
        this.stored.set(tenant, (this.stored.get(tenant) ?? 0) + events.length);
      }
    }
    if (failed) {
      this.failures++;
      this.options.onError?.(err);
    } else {
      this.failures = 0;
      this.gaveUp = false;
    }
    if (this.waiters.length > 0) this.wake();
    if (this.buffers.size === 0) return;
    // Those who came while this write ran are written together, now; a failure is retried after a pause.
    if (!failed && this.waiters.length > 0) this.startSoon();
    else this.schedule(failed ? this.retryMs() : this.flushIntervalMs);
  }

  /** Resolves the waiters whose events are stored, keeping the others in order. */
  private wake(): void {
    const left: Waiter[] = [];
    for (const waiter of this.waiters) {
      if ((this.stored.get(waiter.tenant) ?? 0) >= waiter.upTo) waiter.resolve();
      else left.push(waiter);
    }
    this.waiters = left;
  }

  /** Keeps one timer on the oldest deadline: the first waiter's, or the write in progress's. */
  private watch(): void {
    if (this.watchTimer || this.closed) return;
    const due = this.waiters.length > 0 ? this.waiters[0].until : this.writing ? this.writeStartedAt + this.writeTimeoutMs : undefined;
    if (due === undefined) return;
    this.watchTimer = setTimeout(() => this.onWatch(), Math.max(0, due - this.now()));
    this.watchTimer.unref();
  }

  private onWatch(): void {
    this.watchTimer = undefined;
    const now = this.now();
    if (this.writing && now - this.writeStartedAt >= this.writeTimeoutMs) this.gaveUp = true; // a write that hangs
    let expired = 0;
    while (expired < this.waiters.length && this.waiters[expired].until <= now) expired++;
    if (expired > 0) {
      this.gaveUp = true;
      const late = this.waiters.splice(0, expired);
      const error = unavailable(`the audit trail could not write this call's records within ${this.writeTimeoutMs} ms, so it did not run`);
      for (const waiter of late) waiter.reject(error);
    }
    this.watch();
  }

  /** Said loudly, and kept where a person can find it: the events the trail gives up on at close. */
  private async lose(): Promise<never> {
    const events = [...this.buffers.values()].flat();
    this.buffers = new Map();
    const lost = events.length;
    for (const waiter of this.waiters.splice(0)) waiter.reject(unavailable('the audit trail closed before this call could be recorded'));
    let spilledTo: string | undefined;
    let spillError: string | undefined;
    try {
      spilledTo = await this.options.spill?.(events);
    } catch (err) {
      spillError = (err as Error)?.message ?? String(err);
    }
    const log = this.options.log;
    if (spilledTo) {
      log?.error(`${lost} audit events could not be written to the audit trail; they are saved in ${spilledTo}`, { lost, spilledTo });
    } else {
      // Nowhere else to keep them: the log is the last record of what happened.
      log?.error(`${lost} audit events could not be written to the audit trail${spillError ? ` nor saved (${spillError})` : ''}; they follow, one per line`, { lost });
      for (const event of events) log?.error('unwritten audit event', { event });
    }
    throw unavailable(`${lost} audit events could not be written${spilledTo ? `; saved in ${spilledTo}` : ''}`, { lost, ...(spilledTo ? { spilledTo } : {}) });
  }

  private retryMs(): number {
    return Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, this.failures - 1));
  }

  private schedule(ms: number): void {
    if (this.flushTimer || this.closed) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      // A write in progress schedules the next one when it ends.
      if (!this.writing && this.buffers.size > 0) void this.startWrite();
    }, ms);
  }

  private clearTimers(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.watchTimer) clearTimeout(this.watchTimer);
    if (this.due) clearImmediate(this.due);
    this.flushTimer = this.watchTimer = this.due = undefined;
  }
}

function unavailable(message: string, data?: Record<string, unknown>): GatewayError {
  return new GatewayError('GH_ERR_AUDIT_UNAVAILABLE', message, data ? { data } : undefined);
}
