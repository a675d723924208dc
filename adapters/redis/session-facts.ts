import type { SessionChange, SessionFacts, SessionSlot } from '../../src/ports.ts';
import type { SessionRecord } from '../../src/protocol/session-record.ts';
import { GatewayError } from '../../src/errors.ts';
import { type RedisConnection, type RedisConnectionOptions, RedisScript, closeRedis, connectRedis, runRedis } from './connection.ts';

/** Sessions whose last text an instance keeps (a few KiB each at most). */
const MAX_REMEMBERED = 1_000;
/** A conflicting update is retried; this many conflicts in a row means something is wrong, not busy. */
const MAX_ATTEMPTS = 200;

/**
 * Compare-and-set of several records at once, on the exact texts read. ARGV, per key: the expected text ('' for
 * absent), the new text ('' to leave it), its TTL (ms). Returns {1} when written, else {0, current texts…}.
 */
const UPDATE = new RedisScript(`
for i, key in ipairs(KEYS) do
  if (redis.call('GET', key) or '') ~= ARGV[3 * i - 2] then
    local current = {0}
    for j, k in ipairs(KEYS) do current[j + 1] = redis.call('GET', k) or '' end
    return current
  end
end
for i, key in ipairs(KEYS) do
  if ARGV[3 * i - 1] ~= '' then redis.call('SET', key, ARGV[3 * i - 1], 'PX', ARGV[3 * i]) end
end
return {1}`);

/**
 * Session facts in Redis, shared by every replica on the same namespace: one JSON text per record under
 * `gh:<namespace>:session:<key>`, expiring on the Redis server's clock. `update` is optimistic: read, run the pure
 * `change`, then one script that writes only if every record still holds the text read; a conflict hands back
 * the current texts and `change` runs again on them.
 */
export class RedisSessionFacts implements SessionFacts {
  /**
   * The text this instance last read or wrote for each key, with the record it holds: an update tries it first,
   * with no read before its script (a call's facts were just read for its decision), and without parsing it again.
   * A stale one only costs the conflict round trip that brings the current text. Bounded: dropped whole when full.
   */
  private readonly lastSeen = new Map<string, Seen>();

  private constructor(private readonly redis: RedisConnection) {}

  static async connect(options: RedisConnectionOptions): Promise<RedisSessionFacts> {
    return new RedisSessionFacts(await connectRedis(options, 'GH_ERR_STATE_UNAVAILABLE'));
  }

  async read(keys: readonly string[]): Promise<(SessionRecord | undefined)[]> {
    if (keys.length === 0) return [];
    const redisKeys = keys.map((k) => this.key(k));
    const texts = await this.run(() => this.redis.client.mget(...redisKeys));
    return texts.map((text, i) => this.remember(redisKeys[i], seen(text ?? '')).record);
  }

  async update<T>(slots: readonly SessionSlot[], change: (current: readonly (SessionRecord | undefined)[]) => SessionChange<T>): Promise<T> {
    const keys = slots.map((slot) => this.key(slot.key));
    const cached = keys.map((key) => this.lastSeen.get(key));
    let current = cached.every((c) => c !== undefined) ? (cached as Seen[]) : (await this.run(() => this.redis.client.mget(...keys))).map((text) => seen(text ?? ''));
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { next, value } = change(current.map((c) => c.record));
      const nextTexts = next.map((record) => (record ? JSON.stringify(record) : ''));
      // Nothing to write: a peek, or a refusal. A cached text may be stale, so it is checked (the same script, writing nothing).
      if (nextTexts.every((text) => text === '') && current !== cached) return value;
      const args = slots.flatMap((slot, i) => [current[i].text, nextTexts[i], Math.max(1, Math.ceil(slot.ttlMs))]);
      const reply = (await this.run(() => UPDATE.run(this.redis.client, keys, args))) as [number, ...string[]];
      if (reply[0] === 1) {
        keys.forEach((key, i) => this.remember(key, nextTexts[i] ? { text: nextTexts[i], record: next[i] } : current[i]));
        return value;
      }
      current = (reply.slice(1) as string[]).map((text, i) => this.remember(keys[i], seen(text)));
    }
    throw new GatewayError('GH_ERR_STATE_UNAVAILABLE', `session facts: ${MAX_ATTEMPTS} conflicting updates in a row`);
  }

  async close(): Promise<void> {
    await closeRedis(this.redis.client);
  }

  private remember(key: string, value: Seen): Seen {
    if (this.lastSeen.size >= MAX_REMEMBERED && !this.lastSeen.has(key)) this.lastSeen.clear();
    this.lastSeen.set(key, value);
    return value;
  }

  private key(key: string): string {
    return `${this.redis.prefix}session:${key}`;
  }

  private run<T>(command: () => Promise<T>): Promise<T> {
    return runRedis(this.redis, 'GH_ERR_STATE_UNAVAILABLE', command);
  }
}

/** A record's stored text ('' for none) and the record it holds. */
interface Seen {
  text: string;
  record: SessionRecord | undefined;
}

const seen = (text: string): Seen => ({ text, record: text ? (JSON.parse(text) as SessionRecord) : undefined });
