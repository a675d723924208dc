import type { Store } from '../../src/ports.ts';
import { type RedisConnection, type RedisConnectionOptions, RedisScript, closeRedis, connectRedis, runRedis } from './connection.ts';

/** INCR, and the TTL only when this increment created the key: later ones keep the first expiry (no sliding). */
const INCREMENT = new RedisScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 and ARGV[1] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`);

/** GET then DEL of every key given, the first one's value returned: one round trip. */
const TAKE = new RedisScript(`
local v = redis.call('GET', KEYS[1])
redis.call('DEL', unpack(KEYS))
return v`);

/** SET NX (with PX when ARGV[2] is not empty) of the claim, and GET of the other key: {1 or 0, its value or nil}. */
const CLAIM_AND_GET = new RedisScript(`
local claimed
if ARGV[2] == '' then claimed = redis.call('SET', KEYS[1], ARGV[1], 'NX')
else claimed = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') end
return {claimed and 1 or 0, redis.call('GET', KEYS[2])}`);

/**
 * Key-value state in Redis: values JSON-encoded under `gh:<namespace>:<key>`, TTLs as PX, so expiry follows the
 * Redis server's clock, not the gateway's injected Clock. Every operation is one round trip.
 */
export class RedisStore implements Store {
  private constructor(private readonly redis: RedisConnection) {}

  static async connect(options: RedisConnectionOptions): Promise<RedisStore> {
    return new RedisStore(await connectRedis(options, 'GH_ERR_STATE_UNAVAILABLE'));
  }

  /** Whether the connection is up now (it reconnects by itself): what a health check reports. */
  get connected(): boolean {
    return this.redis.client.status === 'ready';
  }

  async get<T = unknown>(key: string): Promise<T | undefined> {
    const text = await this.run(() => this.redis.client.get(this.key(key)));
    return text === null ? undefined : (JSON.parse(text) as T);
  }

  async set(key: string, value: unknown, options: { ttlMs?: number } = {}): Promise<void> {
    const text = encode(value);
    await this.run(() =>
      options.ttlMs === undefined ? this.redis.client.set(this.key(key), text) : this.redis.client.set(this.key(key), text, 'PX', ttlOf(options.ttlMs)),
    );
  }

  async setIfAbsent(key: string, value: unknown, options: { ttlMs?: number } = {}): Promise<boolean> {
    const text = encode(value);
    const reply = await this.run(() =>
      options.ttlMs === undefined
        ? this.redis.client.set(this.key(key), text, 'NX')
        : this.redis.client.set(this.key(key), text, 'PX', ttlOf(options.ttlMs), 'NX'),
    );
    return reply === 'OK';
  }

  async claimAndGet<T = unknown>(claim: string, value: unknown, key: string, options: { ttlMs?: number } = {}): Promise<{ claimed: boolean; value: T | undefined }> {
    const ttl = options.ttlMs === undefined ? '' : String(ttlOf(options.ttlMs));
    const [claimed, text] = (await this.run(() => CLAIM_AND_GET.run(this.redis.client, [this.key(claim), this.key(key)], [encode(value), ttl]))) as [number, string | null];
    return { claimed: claimed === 1, value: text === null || text === undefined ? undefined : (JSON.parse(text) as T) };
  }

  async increment(key: string, options: { ttlMs?: number } = {}): Promise<number> {
    const ttl = options.ttlMs === undefined ? '' : String(ttlOf(options.ttlMs));
    return Number(await this.run(() => INCREMENT.run(this.redis.client, [this.key(key)], [ttl])));
  }

  async delete(key: string): Promise<void> {
    await this.run(() => this.redis.client.del(this.key(key)));
  }

  async take<T = unknown>(key: string, alsoDelete: readonly string[] = []): Promise<T | undefined> {
    const keys = [key, ...alsoDelete].map((k) => this.key(k));
    const text = (await this.run(() => TAKE.run(this.redis.client, keys, []))) as string | null;
    return text === null ? undefined : (JSON.parse(text) as T);
  }

  async close(): Promise<void> {
    await closeRedis(this.redis.client);
  }

  private key(key: string): string {
    return `${this.redis.prefix}kv:${key}`;
  }

  private run<T>(command: () => Promise<T>): Promise<T> {
    return runRedis(this.redis, 'GH_ERR_STATE_UNAVAILABLE', command);
  }
}

function encode(value: unknown): string {
  // JSON has no `undefined`: store it as null, which reads back as null (a present key), like a stored null.
  return JSON.stringify(value) ?? 'null';
}

/** PX needs a positive integer: a TTL below 1 ms expires at once, as it would in memory. */
function ttlOf(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs));
}
