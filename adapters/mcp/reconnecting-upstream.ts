import type { ServerInfo, Upstream, UpstreamCredential, UpstreamFailure, UpstreamListener, UpstreamRequestOptions, UpstreamState } from '../../src/ports.ts';
import { GatewayError } from '../../src/errors.ts';
import { MODERN_PROTOCOL_VERSION, UPSTREAM_PROTOCOL_VERSION } from '../../src/protocol/mcp.ts';
import type { Era } from '../../src/protocol/call.ts';
import { ENVELOPE_KEYS, modernEnvelope } from '../../src/protocol/modern-envelope.ts';
import { asPlainResult } from './modern-result.ts';
import { UpstreamListen } from './upstream-listen.ts';
import type { JsonRpcId, JsonRpcMessage } from '../../src/protocol/jsonrpc.ts';
import { RpcClient, unavailable } from './rpc-client.ts';
import type { Logger } from '../../src/log.ts';


const BACKOFF_START_MS = 250;
const BACKOFF_MAX_MS = 30_000;
const HANDSHAKE_TIMEOUT_MS = 30_000;
const CLIENT_INFO = { name: 'gatehouse', version: '0.1.0' };
/**
 * Requests 2026-07-28 removed with no stand-in (`logging/setLevel` has one: the envelope; `resources/subscribe` and
 * `unsubscribe` too: the listen's filter).
 */
const REMOVED_IN_MODERN = new Set(['ping']);
/** What Gatehouse can answer for an upstream, in either era: it asks its own clients (or relays their MRTR answers). */
const CLIENT_CAPABILITIES = { elicitation: { form: {}, url: {} }, sampling: {}, roots: { listChanged: true } };

/**
 * What both upstream kinds share: the state machine (starting → ready ⇄ down → closed), the initialize
 * handshake, and reconnection with exponential backoff. A subclass only opens and closes the transport and
 * moves messages; when its transport dies it calls `connectionLost`.
 */
export abstract class ReconnectingUpstream implements Upstream {
  state: UpstreamState = 'starting';
  failure: UpstreamFailure | undefined;
  serverCapabilities: Record<string, unknown> | undefined;
  serverInfo: ServerInfo | undefined;
  /** The revision this connection speaks: 2026-07-28 when the upstream offered it to `server/discover`, else 2025. */
  era: Era | undefined;
  protected readonly rpc: RpcClient;
  /** A 2026-07-28 upstream's notifications and resource updates: its `subscriptions/listen`. */
  private readonly listen: UpstreamListen;
  private listener: UpstreamListener = {};
  private backoffMs = BACKOFF_START_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  /** The wait before the reconnect now scheduled (ms). */
  private retryInMs = BACKOFF_START_MS;
  private connecting: Promise<void> | undefined;

  constructor(
    readonly name: string,
    protected readonly log: Logger,
    /** `legacy`: never asks `server/discover`, always speaks 2025. */
    private readonly eraChoice: 'auto' | 'legacy' = 'auto',
  ) {
    this.rpc = new RpcClient(name, (message, context) => this.transmit(message, context?.relatedRequestId, context?.credential), () => this.listener);
    this.listen = new UpstreamListen(this.rpc, () => this.state === 'ready' && this.era === 'modern', () => this.serverCapabilities);
  }

  /** Opens the transport. Rejects when it cannot. */
  protected abstract open(): Promise<void>;
  /** Closes the transport, if open. */
  protected abstract shut(): Promise<void>;
  /** Sends one message on the open transport; `credential`: the request's own (HTTP), on a caller's behalf. */
  protected abstract transmit(message: JsonRpcMessage, relatedRequestId?: JsonRpcId, credential?: UpstreamCredential): void | Promise<void>;
  /** Called once the handshake is done, with the negotiated revision (HTTP remembers it for its headers). */
  protected afterHandshake(_protocolVersion: string, _era: Era): void {}

  async start(listener: UpstreamListener): Promise<void> {
    this.listener = listener;
    await this.connect();
  }

  request(method: string, params: Record<string, unknown> | undefined, options?: UpstreamRequestOptions): Promise<Record<string, unknown>> {
    if (this.state !== 'ready') {
      const why = this.failure ? `: ${this.failure.message}` : '';
      return Promise.reject(new GatewayError('GH_ERR_UPSTREAM_UNAVAILABLE', `upstream ${this.name} is ${this.state}${why}`, { data: { upstream: this.name, ...stderrOf(this.failure) } }));
    }
    if (this.era === 'modern' && method === 'logging/setLevel') return Promise.resolve(this.setLogLevel(params?.level));
    if (this.era === 'modern' && REMOVED_IN_MODERN.has(method)) return Promise.reject(removedInModern(this.name, method));
    if (this.era === 'modern' && method === 'resources/subscribe') return Promise.resolve(this.listen.subscribe(String(params?.uri)));
    if (this.era === 'modern' && method === 'resources/unsubscribe') return Promise.resolve(this.listen.unsubscribe(String(params?.uri)));
    if (this.era !== 'modern') return this.rpc.request(method, params, options);
    return this.rpc.request(method, withCallerCapabilities(params, options?.clientCapabilities), options).then(asPlainResult);
  }

  /** 2026-07-28 removed `logging/setLevel`: the level rides in the envelope of every request instead. */
  private setLogLevel(level: unknown): Record<string, unknown> {
    if (typeof level === 'string' && this.rpc.envelope) this.rpc.envelope = { ...this.rpc.envelope, [ENVELOPE_KEYS.logLevel]: level };
    return {};
  }

  async notify(method: string, params?: Record<string, unknown>): Promise<void> {
    if (this.state === 'ready') await this.rpc.notify(method, params);
  }

  async close(): Promise<void> {
    this.setState('closed');
    this.listen.stop();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.rpc.failAll(new GatewayError('GH_ERR_UPSTREAM_UNAVAILABLE', `upstream ${this.name} was closed`));
    await this.shut().catch(() => undefined);
  }

  /** The transport died: fail what is in flight and try again later. */
  protected connectionLost(reason: Error): void {
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    this.rpc.failAll(unavailable(this.name, reason));
    this.setState('down', reason);
    if (wasReady) this.log.warn(`upstream ${this.name} went down: ${reason.message}`);
    this.scheduleReconnect();
  }

  private connect(): Promise<void> {
    if (this.connecting) return this.connecting;
    this.connecting = (async () => {
      try {
        await this.open();
        await this.handshake();
        this.backoffMs = BACKOFF_START_MS;
        this.setState('ready');
        this.log.info(`upstream ${this.name} is ready`);
        if (this.era === 'modern') this.listen.open();
      } catch (err) {
        await this.shut().catch(() => undefined);
        if (this.state !== 'closed') {
          this.setState('down', err as Error);
          this.scheduleReconnect();
          this.log.warn(`upstream ${this.name} is not available: ${rootOf(err as Error).message}; retrying in ${this.retryInMs} ms`);
        }
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  private async handshake(): Promise<void> {
    this.era = undefined;
    this.rpc.envelope = undefined;
    if (this.eraChoice === 'auto' && (await this.discover())) return;
    const result = await this.rpc.request(
      'initialize',
      {
        protocolVersion: UPSTREAM_PROTOCOL_VERSION,
        capabilities: { elicitation: { form: {}, url: {} }, sampling: {}, roots: { listChanged: true } },
        clientInfo: CLIENT_INFO,
      },
      { timeoutMs: HANDSHAKE_TIMEOUT_MS },
    );
    this.serverCapabilities = (result.capabilities as Record<string, unknown>) ?? {};
    this.serverInfo = serverInfoOf(result.serverInfo);
    this.era = 'legacy';
    this.afterHandshake(String(result.protocolVersion ?? UPSTREAM_PROTOCOL_VERSION), 'legacy');
    await this.rpc.notify('notifications/initialized');
  }

  /**
   * Asks `server/discover` first, as a 2026-07-28 client does: an upstream that lists that revision is spoken to in
   * it from then on (stateless, the envelope on every request). Any other answer (an error, -32601 from a 2025
   * server, a result that is no discover result, no answer in time) means the 2025 handshake follows, on the same
   * connection. Only a connection that fails fails the handshake.
   */
  private async discover(): Promise<boolean> {
    const envelope = modernEnvelope(CLIENT_INFO, CLIENT_CAPABILITIES);
    let result: Record<string, unknown>;
    try {
      result = await this.rpc.request('server/discover', { _meta: envelope }, { timeoutMs: HANDSHAKE_TIMEOUT_MS });
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'GH_ERR_UPSTREAM_UNAVAILABLE') throw err;
      return false;
    }
    const versions = result.supportedVersions;
    if (!Array.isArray(versions) || !versions.includes(MODERN_PROTOCOL_VERSION) || !result.capabilities || typeof result.capabilities !== 'object') return false;
    this.serverCapabilities = result.capabilities as Record<string, unknown>;
    this.serverInfo = serverInfoOf((result._meta as Record<string, unknown> | undefined)?.[ENVELOPE_KEYS.serverInfo]);
    this.era = 'modern';
    this.rpc.envelope = envelope;
    this.afterHandshake(MODERN_PROTOCOL_VERSION, 'modern');
    return true;
  }

  private scheduleReconnect(): void {
    if (this.retryTimer || this.state === 'closed') return;
    const wait = (this.retryInMs = this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, wait);
    this.retryTimer.unref();
  }

  private setState(state: UpstreamState, error?: Error): void {
    if (state === 'ready') this.failure = undefined;
    else if (error) {
      const cause = rootOf(error);
      this.failure = { message: cause.message, ...(cause instanceof GatewayError ? { code: cause.code } : {}), ...stderrOf(cause as Partial<UpstreamFailure>) };
    }
    if (this.state === state) return;
    this.state = state;
    this.listener.state?.(state, error);
  }
}

/**
 * The caller's declared capabilities in the request's envelope, in place of Gatehouse's own: the upstream then asks
 * only for what the caller can answer, and refuses with -32021 what needs more (the `_meta` keys win over the envelope).
 */
function withCallerCapabilities(params: Record<string, unknown> | undefined, capabilities: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!capabilities) return params;
  return { ...params, _meta: { ...((params?._meta as Record<string, unknown>) ?? {}), [ENVELOPE_KEYS.clientCapabilities]: capabilities } };
}

/** Refused here rather than sent: the upstream would only answer -32601, with no word of why. */
function removedInModern(upstream: string, method: string): GatewayError {
  const message = `${upstream} speaks MCP 2026-07-28, which has no ${method}`;
  return new GatewayError('GH_ERR_ERA_UNTRANSLATABLE', message, { data: { upstream, rpcError: { code: -32601, message, data: { code: 'GH_ERR_ERA_UNTRANSLATABLE' } } } });
}

/** Our own error wraps the transport's (`upstream x is unavailable: <why>`): the why is what to keep. */
function rootOf(error: Error): Error {
  return error instanceof GatewayError && error.cause instanceof Error ? error.cause : error;
}

function stderrOf(failure: Partial<UpstreamFailure> | undefined): { stderr?: string[] } {
  return failure?.stderr?.length ? { stderr: failure.stderr } : {};
}

/** The name and version of an initialize answer's serverInfo; none when the server sent no name. */
function serverInfoOf(info: unknown): ServerInfo | undefined {
  const { name, version } = (info ?? {}) as { name?: unknown; version?: unknown };
  if (typeof name !== 'string' || name === '') return undefined;
  return typeof version === 'string' ? { name, version } : { name };
}
