import type { PinStore, ToolPin } from '../../src/ports.ts';
import { GatewayError } from '../../src/errors.ts';
import { type RedisConnection, type RedisConnectionOptions, closeRedis, connectRedis, runRedis } from './connection.ts';

const fieldOf = (server: string, tool: string): string => `${server}\u0000${tool}`;

/**
 * The pinned tool definitions in Redis, shared by every replica and the CLI: one hash, `gh:<ns>:pins`, a field per
 * tool (`<server>\0<tool>`) holding its pin as JSON. A `put` is one HSET, so its pins land together.
 */
export class RedisPinStore implements PinStore {
  private constructor(private readonly redis: RedisConnection) {}

  static async connect(options: RedisConnectionOptions): Promise<RedisPinStore> {
    return new RedisPinStore(await connectRedis(options, 'GH_ERR_STATE_UNAVAILABLE'));
  }

  async list(): Promise<ToolPin[]> {
    const all = await runRedis(this.redis, 'GH_ERR_STATE_UNAVAILABLE', () => this.redis.client.hgetall(this.key()));
    return Object.entries(all).map(([field, json]) => this.parse(field, json));
  }

  async get(server: string, tool: string): Promise<ToolPin | undefined> {
    const field = fieldOf(server, tool);
    const json = await runRedis(this.redis, 'GH_ERR_STATE_UNAVAILABLE', () => this.redis.client.hget(this.key(), field));
    return json === null ? undefined : this.parse(field, json);
  }

  async put(pins: readonly ToolPin[]): Promise<void> {
    if (pins.length === 0) return;
    const fields = pins.flatMap((p) => [fieldOf(p.server, p.tool), JSON.stringify(p)]);
    await runRedis(this.redis, 'GH_ERR_STATE_UNAVAILABLE', () => this.redis.client.hset(this.key(), ...fields));
  }

  close(): Promise<void> {
    return closeRedis(this.redis.client);
  }

  private parse(field: string, json: string): ToolPin {
    try {
      return JSON.parse(json) as ToolPin;
    } catch (err) {
      throw new GatewayError('GH_ERR_DATA_CORRUPT', `the pin of ${field.replace('\u0000', '__')} in ${this.key()} is not JSON`, { cause: err });
    }
  }

  private key(): string {
    return `${this.redis.prefix}pins`;
  }
}
