import type { Bus, ServerInfo, Upstream, UpstreamFailure, UpstreamListener, UpstreamRequestOptions, UpstreamState } from '../ports.ts';
import type { Logger } from '../log.ts';
import { DEFAULT_UPSTREAM_TIMEOUT_MS } from '../config/schema.ts';
import { ERROR_CATALOGUE, GatewayError, isGatewayError, type ErrorCode } from '../errors.ts';
import { upstreamRpcSubject, upstreamStatusSubject, type UpstreamDescription, type UpstreamRpcRequest, type UpstreamStatus } from '../protocol/upstream-rpc.ts';

const DESCRIBE_TIMEOUT_MS = 2_000;
/** What needs the upstream's notifications to reach clients, which a pool does not relay yet. */
const UNRELAYED = new Set(['resources/subscribe', 'resources/unsubscribe', 'logging/setLevel']);
/** Workers whose list-change counts are remembered: enough for any pool, bounded as workers come and go. */
const REMEMBERED_WORKERS = 256;

/**
 * An upstream that a worker pool hosts, as a gateway sees it: lists, reads and notifications travel on the bus's
 * request/reply channel to whichever worker has it ready; its tool calls are jobs for the pool. It is `ready`
 * while some worker answers, and polls them so that a pool coming up, going away or changing its lists is seen.
 */
export class PoolUpstream implements Upstream {
  private current: UpstreamState = 'starting';
  private capabilities: Record<string, unknown> | undefined;
  /** The serverInfo the hosting worker last described. */
  serverInfo: ServerInfo | undefined;
  /** While no worker serves it: why, as a worker hosting it says (the SSRF guard's refusal, with its code …). */
  failure: UpstreamFailure | undefined;
  private listener: UpstreamListener = {};
  private poller: NodeJS.Timeout | undefined;
  /** The list_changed counts each worker last reported, to turn their growth into notifications. */
  private readonly seenChanges = new Map<string, Record<string, number>>();

  constructor(
    readonly name: string,
    readonly pool: string,
    private readonly bus: Bus,
    private readonly log: Logger,
    private readonly options: { pollMs?: number } = {},
  ) {}

  get state(): UpstreamState {
    return this.current;
  }

  /**
   * What the pool's upstream declared, minus what does not cross the pool yet: resource subscriptions and logging
   * (its notifications stay on the worker), so clients are never promised them for this upstream.
   */
  get serverCapabilities(): Record<string, unknown> | undefined {
    if (!this.capabilities) return undefined;
    const { logging: _logging, ...rest } = this.capabilities;
    const resources = rest.resources as Record<string, unknown> | undefined;
    if (resources?.subscribe === undefined) return rest;
    const { subscribe: _subscribe, ...withoutSubscribe } = resources;
    return { ...rest, resources: withoutSubscribe };
  }

  async start(listener: UpstreamListener): Promise<void> {
    this.listener = listener;
    await this.poll();
    this.poller = setInterval(() => void this.poll(), this.options.pollMs ?? 2_000);
    this.poller.unref();
  }

  async request(method: string, params: Record<string, unknown> | undefined, options: UpstreamRequestOptions = {}): Promise<Record<string, unknown>> {
    if (UNRELAYED.has(method)) throw new GatewayError('GH_ERR_METHOD_NOT_FOUND', `${method} is not relayed to ${this.name}: it runs in worker pool ${this.pool}, whose notifications stay there`);
    const timeoutMs = options.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
    const body: UpstreamRpcRequest = { op: 'request', method, ...(params ? { params } : {}), timeoutMs };
    try {
      return (await this.bus.request(upstreamRpcSubject(this.name), body, { timeoutMs: timeoutMs + 1_000, ...(options.signal ? { signal: options.signal } : {}) })) as Record<string, unknown>;
    } catch (err) {
      if (isGatewayError(err, 'GH_ERR_UPSTREAM_UNAVAILABLE')) throw new GatewayError('GH_ERR_UPSTREAM_UNAVAILABLE', `no worker of pool ${this.pool} has ${this.name} ready`, { cause: err });
      throw err;
    }
  }

  /**
   * Client notifications (roots/list_changed, cancellations outside a job) are not relayed: each worker's copy
   * of the upstream has its own session, and only a job's own requests reach the client (through its replica).
   */
  async notify(): Promise<void> {}

  async close(): Promise<void> {
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
    this.current = 'closed';
  }

  private async poll(): Promise<void> {
    if (this.current === 'closed') return;
    let description: UpstreamDescription;
    try {
      description = (await this.bus.request(upstreamRpcSubject(this.name), { op: 'describe' } satisfies UpstreamRpcRequest, { timeoutMs: DESCRIBE_TIMEOUT_MS })) as UpstreamDescription;
    } catch (err) {
      this.failure = await this.workersFailure();
      this.become('down', this.failure ? new GatewayError(this.failure.code ?? 'GH_ERR_UPSTREAM_UNAVAILABLE', this.failure.message) : (err as Error));
      return;
    }
    this.failure = undefined;
    this.capabilities = description.serverCapabilities;
    this.serverInfo = description.serverInfo;
    const before = this.seenChanges.get(description.workerId);
    this.seenChanges.delete(description.workerId);
    this.seenChanges.set(description.workerId, description.changes);
    if (this.seenChanges.size > REMEMBERED_WORKERS) this.seenChanges.delete(this.seenChanges.keys().next().value as string);
    if (this.current !== 'ready') {
      this.become('ready');
      return;
    }
    // A worker seen before reports more list changes: its upstream's lists changed since the last poll.
    for (const [method, count] of Object.entries(description.changes)) {
      if (before && count > (before[method] ?? 0)) this.listener.notification?.(method, undefined);
    }
  }

  /** What a worker hosting the upstream says is wrong with it; undefined when none answers (no worker at all). */
  private async workersFailure(): Promise<UpstreamFailure | undefined> {
    try {
      const status = (await this.bus.request(upstreamStatusSubject(this.name), {}, { timeoutMs: DESCRIBE_TIMEOUT_MS })) as UpstreamStatus;
      if (!status.failure) return undefined;
      const code = status.failure.code && Object.hasOwn(ERROR_CATALOGUE, status.failure.code) ? (status.failure.code as ErrorCode) : undefined;
      return { message: status.failure.message, ...(code ? { code } : {}) };
    } catch {
      return undefined;
    }
  }

  private become(state: UpstreamState, error?: Error): void {
    if (this.current === state || this.current === 'closed') return;
    if (state === 'down') this.log.warn(`${this.name} (pool ${this.pool}) is not served by any worker: ${error?.message ?? 'no answer'}`);
    this.current = state;
    this.listener.state?.(state, error);
  }
}
