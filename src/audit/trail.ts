import type { AuditStore } from '../ports.ts';
import type { AuditEvent } from './record.ts';
import { chainEvents } from './chain.ts';

export interface AuditTrailOptions {
  /** How long events may wait in memory before they are written (ms). Default 20. */
  flushIntervalMs?: number;
  /** Called when a flush fails; the events stay buffered and are retried on the next flush. */
  onError?: (err: unknown) => void;
}

/**
 * The audit trail the core writes to. `record()` only buffers, so the hot path never waits on a disk; a timer
 * chains and appends each tenant's events in one batch. A failed flush keeps its events for the next try.
 */
export class AuditTrail {
  private readonly buffers = new Map<string, AuditEvent[]>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly flushIntervalMs: number;

  constructor(
    private readonly store: AuditStore,
    private readonly options: AuditTrailOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 20;
  }

  record(event: AuditEvent): void {
    let buffer = this.buffers.get(event.tenant);
    if (!buffer) this.buffers.set(event.tenant, (buffer = []));
    buffer.push(event);
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.flushIntervalMs);
    }
  }

  /** Writes everything recorded so far. Concurrent callers share one flush. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.buffers.size === 0) return;
    this.flushing = this.flushOnce().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private scheduleRetry(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, 1_000);
  }

  private async flushOnce(): Promise<void> {
    const batches = [...this.buffers];
    this.buffers.clear();
    for (const [tenant, events] of batches) {
      try {
        let head = await this.store.head(tenant);
        for (;;) {
          const result = await this.store.append(tenant, head, chainEvents(head, events));
          if (result.ok) break;
          head = result.head; // another writer appended first: re-chain on top of it
        }
      } catch (err) {
        const kept = this.buffers.get(tenant) ?? [];
        this.buffers.set(tenant, [...events, ...kept]);
        this.options.onError?.(err);
        this.scheduleRetry();
      }
    }
  }
}
