import type { Clock, SessionChange, SessionFacts, SessionSlot } from '../../src/ports.ts';
import type { SessionRecord } from '../../src/protocol/session-record.ts';
import { systemClock } from './clock.ts';

export interface HeldRecord {
  record: SessionRecord;
  expiresAt: number;
}

/**
 * Session facts in the process. Records are held by reference: `change` returns new records rather than editing
 * the ones it sees, so a reader never sees half an update. An update reads and writes with no await in between,
 * which is what makes it atomic here.
 */
export class MemorySessionFacts implements SessionFacts {
  protected readonly records = new Map<string, HeldRecord>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    protected readonly clock: Pick<Clock, 'now'> = systemClock,
    /** Told after every write (the file adapter persists then). */
    private readonly written: () => void = () => undefined,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  async read(keys: readonly string[]): Promise<(SessionRecord | undefined)[]> {
    return keys.map((key) => this.live(key));
  }

  async update<T>(slots: readonly SessionSlot[], change: (current: readonly (SessionRecord | undefined)[]) => SessionChange<T>): Promise<T> {
    const { next, value } = change(slots.map((slot) => this.live(slot.key)));
    const now = this.clock.now();
    let wrote = false;
    slots.forEach((slot, i) => {
      const record = next[i];
      if (!record) return;
      this.records.set(slot.key, { record, expiresAt: now + slot.ttlMs });
      wrote = true;
    });
    if (wrote) this.written();
    return value;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }

  /** Every live record (the file adapter's snapshot). */
  held(): [string, HeldRecord][] {
    this.sweep();
    return [...this.records];
  }

  /** Puts back what a snapshot held; expired records are dropped. */
  restore(entries: Iterable<[string, HeldRecord]>): void {
    const now = this.clock.now();
    for (const [key, held] of entries) if (held.expiresAt > now) this.records.set(key, held);
  }

  private live(key: string): SessionRecord | undefined {
    const held = this.records.get(key);
    if (!held) return undefined;
    if (held.expiresAt <= this.clock.now()) {
      this.records.delete(key);
      return undefined;
    }
    return held.record;
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [key, held] of this.records) if (held.expiresAt <= now) this.records.delete(key);
  }
}
