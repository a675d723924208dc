import { connect, type NatsConnection } from '@nats-io/transport-node';
import { GatewayError } from '../../src/errors.ts';
import type { Logger } from '../../src/log.ts';
import { redactUrl } from '../../src/protocol/redact-url.ts';

/** How an adapter reaches NATS. */
export interface NatsConnectionOptions {
  /**
   * `nats://[user:password@|token@]host[:port]` or `tls://…` (port 4222 by default). Required: there is no
   * default endpoint. Credentials are taken from the URL and never appear in errors or logs.
   */
  url: string;
  /** The connection's name, as the server's monitoring shows it (e.g. `gatehouse-gateway-<host>`). */
  name: string;
  /** How long the first connection attempt may take before startup fails, in ms. Default 2000. */
  connectTimeoutMs?: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;
const RECONNECT_WAIT_MS = 250;
const RECONNECT_JITTER_MS = 250;
// A server that stops answering (frozen, half-open socket) counts as gone after ~3 missed pings, not minutes.
const PING_INTERVAL_MS = 5_000;
const MAX_PINGS_OUT = 3;
const DRAIN_TIMEOUT_MS = 2_000;

/**
 * One connection to NATS and whether it is up right now. Once connected it reconnects forever on its own (the
 * server's subscriptions are restored by nats.js); while it is down, `assertUp` refuses, so callers fail
 * closed at once instead of having their messages buffered or hanging.
 */
export class NatsLink {
  private up = true;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly nc: NatsConnection,
    /** The URL without its credentials, for messages. */
    readonly endpoint: string,
    private readonly log: Logger,
  ) {
    void this.watch();
  }

  /**
   * Connects once, so that a wrong URL or an unreachable server is a startup error naming the endpoint
   * (GH_ERR_BUS_UNAVAILABLE), never a hang.
   */
  static async connect(options: NatsConnectionOptions, log: Logger): Promise<NatsLink> {
    const target = parseNatsUrl(options.url);
    try {
      const nc = await connect({
        servers: target.server,
        name: options.name,
        ...target.credentials,
        ...(target.tls ? { tls: {} } : {}),
        timeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        waitOnFirstConnect: false,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: RECONNECT_WAIT_MS,
        reconnectJitter: RECONNECT_JITTER_MS,
        pingInterval: PING_INTERVAL_MS,
        maxPingOut: MAX_PINGS_OUT,
      });
      return new NatsLink(nc, target.endpoint, log);
    } catch (err) {
      throw unavailable(target.endpoint, `cannot connect to NATS at ${target.endpoint}: ${messageOf(err)}`, err);
    }
  }

  get connected(): boolean {
    return this.up && !this.nc.isClosed();
  }

  /** Throws GH_ERR_BUS_UNAVAILABLE while the connection is down (reconnecting) or closed. */
  assertUp(what: string): void {
    if (!this.connected) throw unavailable(this.endpoint, `NATS at ${this.endpoint} is not reachable, so ${what} is refused`);
  }

  /** A GH_ERR_BUS_UNAVAILABLE naming the endpoint, for a failure of `what`; GatewayErrors pass through. */
  failure(what: string, err: unknown): GatewayError {
    if (err instanceof GatewayError) return err;
    return unavailable(this.endpoint, `${what} on NATS at ${this.endpoint} failed: ${messageOf(err)}`, err);
  }

  /** Drains (in-flight messages are delivered) when connected, else closes at once; idempotent. */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    if (this.nc.isClosed()) return;
    if (this.connected && !this.nc.isDraining()) {
      const timeout = new Promise((resolve) => setTimeout(resolve, DRAIN_TIMEOUT_MS).unref());
      await Promise.race([this.nc.drain().catch(() => undefined), timeout]);
    }
    if (!this.nc.isClosed()) await this.nc.close().catch(() => undefined);
  }

  private async watch(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') {
        this.up = false;
        this.log.warn(`NATS at ${this.endpoint} is unreachable; reconnecting`);
      } else if (status.type === 'reconnect') {
        this.up = true;
        this.log.info(`NATS at ${this.endpoint} is reachable again`);
      }
    }
  }
}

interface NatsTarget {
  /** `host:port`, what nats.js dials: it ignores credentials in a URL, so they travel as options instead. */
  server: string;
  endpoint: string;
  credentials: { user?: string; pass?: string; token?: string };
  tls: boolean;
}

function parseNatsUrl(url: string): NatsTarget {
  const shown = typeof url === 'string' ? redactUrl(url) : String(url);
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    // reported below
  }
  if (!parsed || (parsed.protocol !== 'nats:' && parsed.protocol !== 'tls:') || !parsed.hostname || (parsed.pathname !== '' && parsed.pathname !== '/')) {
    throw unavailable(shown, `the NATS URL ${JSON.stringify(shown)} is not nats://host:port or tls://host:port`);
  }
  const server = `${parsed.hostname}:${parsed.port || '4222'}`;
  const user = decodeURIComponent(parsed.username);
  const pass = decodeURIComponent(parsed.password);
  return {
    server,
    endpoint: `${parsed.protocol}//${server}`,
    credentials: pass ? { user, pass } : user ? { token: user } : {},
    tls: parsed.protocol === 'tls:',
  };
}

function unavailable(endpoint: string, message: string, cause?: unknown): GatewayError {
  return new GatewayError('GH_ERR_BUS_UNAVAILABLE', message, { ...(cause === undefined ? {} : { cause }), data: { endpoint } });
}

/** The text of anything thrown, for a log or an error message. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
