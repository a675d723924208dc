import type { AuditEvent } from './record.ts';
import type { AuditWriter } from './chain-writer.ts';
import { GatewayError } from '../errors.ts';

export interface AuditTrailOptions {
  /** How long events may wait in memory before they are written (ms). Default 20. */
  flushIntervalMs?: number;
  /** Called when a write fails; the events stay buffered and are tried again a second later. */
  onError?: (err: unknown) => void;
  /** Past this many unwritten events the trail stops accepting work (see `accepting`). Default 100,000. */
  maxBacklog?: number;
}

const RETRY_MS = 1_000;

/**
 * The audit trail the core writes to. `record()` only buffers, so the hot path never waits on a disk or a
 * hash; a timer hands each batch to the writer. A batch the writer fails to store is kept and tried again,
 * ahead of what was recorded since, so the chain keeps its order and loses nothing.
 */
export class AuditTrail {
  private buffers = new Map<string, AuditEvent[]>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  /** Events handed to the writer and not yet stored: still backlog until the write succeeds. */
  private inFlight = 0;
  private readonly flushIntervalMs: number;
  private closed = false;

  constructor(
    private readonly writer: AuditWriter,
    private readonly options: AuditTrailOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 20;
  }

  /** Events recorded but not yet stored. */
  get backlog(): number {
    let n = this.inFlight;
    for (const events of this.buffers.values()) n += events.length;
    return n;
  }

  /**
   * False while the writer keeps failing and the backlog is past its limit: nothing may run that the trail
   * cannot record, so the gateway refuses new calls until the writes succeed again.
   */
  get accepting(): boolean {
    return (this.buffers.size === 0 && this.inFlight === 0) || this.backlog < (this.options.maxBacklog ?? 100_000);
  }

  record(event: AuditEvent): void {
    let buffer = this.buffers.get(event.tenant);
    if (!buffer) this.buffers.set(event.tenant, (buffer = []));
    buffer.push(event);
    this.schedule(this.flushIntervalMs);
  }

  /** Writes everything recorded so far. Concurrent callers share one write. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.buffers.size === 0) return;
    const batch = this.buffers;
    this.buffers = new Map();
    for (const events of batch.values()) this.inFlight += events.length;
    this.writing = this.writer
      .write(batch)
      .catch((err: Error & { failed?: string[] }) => {
        // Put back what was not stored, ahead of anything recorded meanwhile.
        for (const tenant of err.failed ?? [...batch.keys()]) {
          this.buffers.set(tenant, [...(batch.get(tenant) ?? []), ...(this.buffers.get(tenant) ?? [])]);
        }
        this.options.onError?.(err);
        this.schedule(RETRY_MS);
      })
      .finally(() => {
        this.inFlight = 0;
        this.writing = undefined;
      });
    return this.writing;
  }

  /** Writes what is buffered, once, and stops. Events that could not be written make it reject, loudly. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
    await this.writer.close();
    const lost = this.backlog;
    if (lost > 0) throw new GatewayError('GH_ERR_INTERNAL', `${lost} audit events could not be written (see the errors above)`, { data: { lost } });
  }

  private schedule(ms: number): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, ms);
  }
}
