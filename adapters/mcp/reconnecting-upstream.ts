import type { ServerInfo, Upstream, UpstreamCredential, UpstreamFailure, UpstreamListener, UpstreamRequestOptions, UpstreamState } from '../../src/ports.ts';
import { GatewayError } from '../../src/errors.ts';
import { UPSTREAM_PROTOCOL_VERSION } from '../../src/protocol/mcp.ts';
import type { JsonRpcId, JsonRpcMessage } from '../../src/protocol/jsonrpc.ts';
import { RpcClient, unavailable } from './rpc-client.ts';
import type { Logger } from '../../src/log.ts';


const BACKOFF_START_MS = 250;
const BACKOFF_MAX_MS = 30_000;
const HANDSHAKE_TIMEOUT_MS = 30_000;
const CLIENT_INFO = { name: 'gatehouse', version: '0.1.0' };

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
  protected readonly rpc: RpcClient;
  private listener: UpstreamListener = {};
  private backoffMs = BACKOFF_START_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  /** The wait before the reconnect now scheduled (ms). */
  private retryInMs = BACKOFF_START_MS;
  private connecting: Promise<void> | undefined;

  constructor(
    readonly name: string,
    protected readonly log: Logger,
  ) {
    this.rpc = new RpcClient(name, (message, context) => this.transmit(message, context?.relatedRequestId, context?.credential), () => this.listener);
  }

  /** Opens the transport. Rejects when it cannot. */
  protected abstract open(): Promise<void>;
  /** Closes the transport, if open. */
  protected abstract shut(): Promise<void>;
  /** Sends one message on the open transport; `credential`: the request's own (HTTP), on a caller's behalf. */
  protected abstract transmit(message: JsonRpcMessage, relatedRequestId?: JsonRpcId, credential?: UpstreamCredential): void | Promise<void>;
  /** Called once the handshake is done, with the negotiated session (HTTP remembers the protocol version). */
  protected afterHandshake(_protocolVersion: string): void {}

  async start(listener: UpstreamListener): Promise<void> {
    this.listener = listener;
    await this.connect();
  }

  request(method: string, params: Record<string, unknown> | undefined, options?: UpstreamRequestOptions): Promise<Record<string, unknown>> {
    if (this.state !== 'ready') {
      const why = this.failure ? `: ${this.failure.message}` : '';
      return Promise.reject(new GatewayError('GH_ERR_UPSTREAM_UNAVAILABLE', `upstream ${this.name} is ${this.state}${why}`, { data: { upstream: this.name, ...stderrOf(this.failure) } }));
    }
    return this.rpc.request(method, params, options);
  }

  async notify(method: string, params?: Record<string, unknown>): Promise<void> {
    if (this.state === 'ready') await this.rpc.notify(method, params);
  }

  async close(): Promise<void> {
    this.setState('closed');
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
    this.afterHandshake(String(result.protocolVersion ?? UPSTREAM_PROTOCOL_VERSION));
    await this.rpc.notify('notifications/initialized');
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
