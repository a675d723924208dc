import type { Clock, Store } from '../../src/ports.ts';
import { systemClock } from './clock.ts';

interface Entry {
  value: unknown;
  expiresAt: number;
}

/**
 * In-process key-value state. Values are held by reference (callers treat them as immutable), which keeps the
 * per-call pointers free of serialization. Expired keys are dropped lazily and by a periodic sweep.
 */
export class MemoryStore implements Store {
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly clock: Clock = systemClock, sweepEveryMs = 30_000) {
    this.sweeper = setInterval(() => this.sweep(), sweepEveryMs);
    this.sweeper.unref();
  }

  async get<T>(key: string): Promise<T | undefined> {
    return this.live(key)?.value as T | undefined;
  }

  async set(key: string, value: unknown, options: { ttlMs?: number } = {}): Promise<void> {
    this.entries.set(key, { value, expiresAt: this.expiry(options.ttlMs) });
  }

  async setIfAbsent(key: string, value: unknown, options: { ttlMs?: number } = {}): Promise<boolean> {
    // Check and set with no await in between: that is what makes the claim atomic.
    if (this.live(key)) return false;
    this.entries.set(key, { value, expiresAt: this.expiry(options.ttlMs) });
    return true;
  }

  async claimAndGet<T>(claim: string, value: unknown, key: string, options: { ttlMs?: number } = {}): Promise<{ claimed: boolean; value: T | undefined }> {
    return { claimed: await this.setIfAbsent(claim, value, options), value: await this.get<T>(key) };
  }

  async increment(key: string, options: { ttlMs?: number } = {}): Promise<number> {
    // Read and write with no await in between, as for setIfAbsent.
    const entry = this.live(key);
    if (!entry) {
      this.entries.set(key, { value: 1, expiresAt: this.expiry(options.ttlMs) });
      return 1;
    }
    const count = (typeof entry.value === 'number' ? entry.value : 0) + 1;
    entry.value = count;
    return count;
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }

  async take<T>(key: string, alsoDelete: readonly string[] = []): Promise<T | undefined> {
    const value = this.live(key)?.value as T | undefined;
    this.entries.delete(key);
    for (const other of alsoDelete) this.entries.delete(other);
    return value;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.entries.clear();
  }

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private expiry(ttlMs: number | undefined): number {
    return ttlMs === undefined ? Number.POSITIVE_INFINITY : this.clock.now() + ttlMs;
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }
}
