import type { SinkCursors } from '../../src/ports.ts';
import { type RedisConnection, type RedisConnectionOptions, RedisScript, closeRedis, connectRedis, runRedis } from './connection.ts';

/** KEYS: the sink's cursors (hash). ARGV: tenant, seq. Sets the cursor only forward. */
const ADVANCE = new RedisScript(`
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1`);

/**
 * The audit sinks' cursors in Redis, shared by the replicas: a hash per sink, `gh:<ns>:audit-sink:<sink>`,
 * tenant → seq. A replica that takes a sink over starts where the last holder left it.
 */
export class RedisSinkCursors implements SinkCursors {
  private constructor(private readonly redis: RedisConnection) {}

  static async connect(options: RedisConnectionOptions): Promise<RedisSinkCursors> {
    return new RedisSinkCursors(await connectRedis(options, 'GH_ERR_STATE_UNAVAILABLE'));
  }

  async get(sink: string, tenant: string): Promise<number> {
    const seq = await runRedis(this.redis, 'GH_ERR_STATE_UNAVAILABLE', () => this.redis.client.hget(this.key(sink), tenant));
    return seq === null ? 0 : Number(seq);
  }

  async set(sink: string, tenant: string, seq: number): Promise<void> {
    await runRedis(this.redis, 'GH_ERR_STATE_UNAVAILABLE', () => ADVANCE.run(this.redis.client, [this.key(sink)], [tenant, seq]));
  }

  close(): Promise<void> {
    return closeRedis(this.redis.client);
  }

  private key(sink: string): string {
    return `${this.redis.prefix}audit-sink:${sink}`;
  }
}
