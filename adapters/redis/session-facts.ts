import { randomBytes } from 'node:crypto';
import type { SessionChange, SessionFacts, SessionSlot } from '../../src/ports.ts';
import type { SessionRecord } from '../../src/protocol/session-record.ts';
import { GatewayError } from '../../src/errors.ts';
import { type RedisConnection, type RedisConnectionOptions, closeRedis, connectRedis, runRedis } from './connection.ts';
import { fieldChanges, recordOfFields } from './session-hash.ts';
import { SESSION_BATCH, SessionBatch, type UpdateOp } from './session-batch.ts';

/** Sessions whose last version an instance keeps (a few KiB each at most). */
const MAX_REMEMBERED = 1_000;
/** A conflicting update is retried; this many conflicts in a row means something is wrong, not busy. */
const MAX_ATTEMPTS = 200;

/**
 * Session facts in Redis, shared by every replica on the same namespace: one hash per record under
 * `gh:<namespace>:sessionfacts:<key>` (session-hash.ts: a field per scalar, list, budget and loop-breaker entry),
 * expiring on the Redis server's clock. Every write sets a version token unique to the writing instance, and an
 * update is a compare-and-set on it: run the pure `change` on the record this instance last saw, then write only
 * the changed fields if every record still holds the version seen; a conflict hands back the current records and
 * `change` runs again on them. A read sends the versions it holds and gets back only the records changed since, so
 * the read before a decision parses nothing when this instance wrote last. Reads and updates of calls in flight
 * together share one script (session-batch.ts).
 */
export class RedisSessionFacts implements SessionFacts {
  /** The version this instance last read or wrote for each key, with the record it holds. Bounded: dropped whole when full. */
  private readonly lastSeen = new Map<string, Seen>();
  /** Makes this instance's version tokens unlike any other's, so that a record rewritten after expiring never matches an old one. */
  private readonly nonce = randomBytes(9).toString('base64url');
  private writes = 0;
  private readonly batch: SessionBatch;

  private constructor(private readonly redis: RedisConnection) {
    this.batch = new SessionBatch((keys, ops) => runRedis(redis, 'GH_ERR_STATE_UNAVAILABLE', () => SESSION_BATCH.run(redis.client, keys, [ops]) as Promise<unknown[]>));
  }

  static async connect(options: RedisConnectionOptions): Promise<RedisSessionFacts> {
    return new RedisSessionFacts(await connectRedis(options, 'GH_ERR_STATE_UNAVAILABLE'));
  }

  async read(keys: readonly string[]): Promise<(SessionRecord | undefined)[]> {
    if (keys.length === 0) return [];
    return (await this.current(keys.map((k) => this.key(k)))).map((s) => s.record);
  }

  async update<T>(slots: readonly SessionSlot[], change: (current: readonly (SessionRecord | undefined)[]) => SessionChange<T>): Promise<T> {
    const keys = slots.map((slot) => this.key(slot.key));
    let current = this.cached(keys);
    const cached = current;
    current ??= await this.current(keys);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { next, value } = change(current.map((c) => c.record));
      // Nothing to write: a peek, or a refusal. A cached version may be stale, so it is checked (the same script, writing nothing).
      if (current !== cached && next.every((record) => !record)) return value;
      const items: UpdateOp[1] = [];
      const versions: string[] = [];
      for (let i = 0; i < keys.length; i++) {
        const record = next[i];
        const version = record ? `${this.nonce}.${++this.writes}` : '';
        const { set, del } = record ? fieldChanges(current[i].record, record) : NO_CHANGES;
        versions.push(version);
        items.push([current[i].version, version, String(Math.max(1, Math.ceil(slots[i].ttlMs))), set, del]);
      }
      const answer = await this.batch.update(keys, items);
      if (answer === 1) {
        for (let i = 0; i < keys.length; i++) {
          const record = next[i];
          if (record) this.remember(keys[i], { version: versions[i], record });
        }
        return value;
      }
      current = answer.map((fields, i) => this.remember(keys[i], seenOf(fields)));
    }
    throw new GatewayError('GH_ERR_STATE_UNAVAILABLE', `session facts: ${MAX_ATTEMPTS} conflicting updates in a row`);
  }

  async close(): Promise<void> {
    await closeRedis(this.redis.client);
  }

  /** What this instance last saw of every one of `keys`, or undefined when it has not seen one of them. */
  private cached(keys: readonly string[]): Seen[] | undefined {
    const seen: Seen[] = [];
    for (const key of keys) {
      const held = this.lastSeen.get(key);
      if (!held) return undefined;
      seen.push(held);
    }
    return seen;
  }

  /** The current records of `keys` (full Redis keys), parsed only where they changed since this instance saw them. */
  private async current(keys: string[]): Promise<Seen[]> {
    const held = keys.map((key) => this.lastSeen.get(key));
    const answers = await this.batch.read(keys, held.map((s) => s?.version ?? ''));
    return answers.map((answer, i) => (answer === 1 ? held[i]! : this.remember(keys[i], seenOf(answer))));
  }

  private remember(key: string, value: Seen): Seen {
    if (this.lastSeen.size >= MAX_REMEMBERED && !this.lastSeen.has(key)) this.lastSeen.clear();
    this.lastSeen.set(key, value);
    return value;
  }

  private key(key: string): string {
    return `${this.redis.prefix}sessionfacts:${key}`;
  }
}

/** A record's version token ('' for none) and the record it holds. */
interface Seen {
  version: string;
  record: SessionRecord | undefined;
}

const NO_CHANGES = { set: [] as string[], del: [] as string[] };
const ABSENT: Seen = { version: '', record: undefined };

function seenOf(fields: string[]): Seen {
  const held = recordOfFields(fields);
  return held ? { version: held.version, record: held.record } : ABSENT;
}
