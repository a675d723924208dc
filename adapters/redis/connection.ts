import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { GatewayError, type ErrorCode } from '../../src/errors.ts';
import { redactUrl } from '../../src/protocol/redact-url.ts';

/** How an adapter reaches Redis. */
export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…`. Required: there is no default endpoint. */
  url: string;
  /**
   * Keys are `gh:<namespace>:…`, so several gateways (or test suites) can share one Redis. Default: `default`.
   */
  namespace?: string;
  /** How long one connection attempt may take before it fails, in ms. Default 2000. */
  connectTimeoutMs?: number;
}

export interface RedisConnection {
  readonly client: Redis;
  /** `gh:<namespace>:`, the start of every key this adapter touches. */
  readonly prefix: string;
  /** The URL without its credentials, for error messages. */
  readonly endpoint: string;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;
const MAX_RECONNECT_DELAY_MS = 2_000;

/**
 * Opens a connection and waits until it is ready, so that a wrong URL or an unreachable server is a startup
 * error naming the endpoint, never a hang. Once connected, a lost connection is retried with backoff in the
 * background, and a command fails (rather than waits) after one reconnection attempt: callers fail closed.
 */
export async function connectRedis(options: RedisConnectionOptions, unavailable: ErrorCode): Promise<RedisConnection> {
  const endpoint = endpointOf(options.url);
  const namespace = options.namespace ?? 'default';
  if (!/^[0-9A-Za-z_.-]{1,64}$/.test(namespace)) {
    throw new GatewayError('GH_ERR_CONFIG_INVALID', `redis namespace ${JSON.stringify(namespace)} must be 1-64 letters, digits, '_', '.' or '-'`);
  }
  const connectTimeout = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  let connected = false;
  const client = new Redis(options.url, {
    lazyConnect: true,
    connectTimeout,
    maxRetriesPerRequest: 1,
    // No retries until the first connection succeeds: startup reports the failure instead of looping.
    retryStrategy: (times) => (connected ? Math.min(times * 100, MAX_RECONNECT_DELAY_MS) : null),
  });
  let lastError: Error | undefined;
  // Without a listener, ioredis prints every reconnection error; the commands that fail report them instead.
  client.on('error', (err: Error) => (lastError = err));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(lastError ?? new Error(`no answer within ${connectTimeout} ms`)), connectTimeout + 500);
      client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
      client.once('end', () => {
        clearTimeout(timer);
        reject(lastError ?? new Error('connection closed'));
      });
      client.connect().catch((err: Error) => {
        lastError ??= err;
      });
    });
  } catch (err) {
    client.disconnect();
    throw new GatewayError(unavailable, `cannot connect to Redis at ${endpoint}: ${(err as Error).message}`, { cause: err, data: { endpoint } });
  }
  connected = true;
  return { client, prefix: `gh:${namespace}:`, endpoint };
}

/** Wraps a failed Redis command into a GatewayError naming the endpoint; GatewayErrors pass through. */
export function redisFailure(err: unknown, connection: RedisConnection, unavailable: ErrorCode): GatewayError {
  if (err instanceof GatewayError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new GatewayError(unavailable, `Redis at ${connection.endpoint} failed: ${message}`, { cause: err, data: { endpoint: connection.endpoint } });
}

/** Runs one command (or script, or MULTI), any failure coded `unavailable` and naming the endpoint. */
export async function runRedis<T>(connection: RedisConnection, unavailable: ErrorCode, command: () => Promise<T>): Promise<T> {
  try {
    return await command();
  } catch (err) {
    throw redisFailure(err, connection, unavailable);
  }
}

/** Closes politely (QUIT), or at once if the server is gone. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  try {
    await Promise.race([client.quit(), new Promise((_, reject) => setTimeout(() => reject(new Error('quit timed out')), 1_000).unref())]);
  } catch {
    client.disconnect();
  }
}

function endpointOf(url: string | undefined): string {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new GatewayError('GH_ERR_CONFIG_INVALID', 'redis.url is required (redis://host:port) in distributed mode');
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new GatewayError('GH_ERR_CONFIG_INVALID', `redis.url ${JSON.stringify(redactUrl(url))} is not a URL`, { cause: err });
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new GatewayError('GH_ERR_CONFIG_INVALID', `redis.url must start with redis:// or rediss://, not ${parsed.protocol}//`, { data: { endpoint: redactUrl(url) } });
  }
  return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
}

/** A Lua script run by its SHA (EVALSHA), loaded with EVAL the first time a server does not know it. */
export class RedisScript {
  private readonly sha: string;

  constructor(private readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(client: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return client.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}
