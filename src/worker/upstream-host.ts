import type { Bus, Subscription, Upstream, UpstreamListener, UpstreamState } from '../ports.ts';
import type { Logger } from '../log.ts';
import { GatewayError } from '../errors.ts';
import { upstreamRpcQueue, upstreamRpcSubject, upstreamStatusSubject, type UpstreamDescription, type UpstreamRpcRequest, type UpstreamStatus } from '../protocol/upstream-rpc.ts';

/**
 * Runs a worker's upstreams and answers the gateways' requests about them (describe, lists, reads). A worker answers for an upstream only while that upstream is ready, so a gateway's request
 * always lands on a worker that can serve it, and "nobody answers" means the whole pool lacks it.
 */
export class UpstreamHost {
  private readonly answering = new Map<string, Subscription>();
  private readonly statuses: Subscription[] = [];
  private readonly changes = new Map<string, Record<string, number>>();

  constructor(
    private readonly bus: Bus,
    private readonly workerId: string,
    private readonly upstreams: ReadonlyMap<string, Upstream>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    for (const upstream of this.upstreams.values()) {
      this.statuses.push(this.bus.reply(upstreamStatusSubject(upstream.name), async () => this.statusOf(upstream)));
    }
    await Promise.all([...this.upstreams.values()].map((upstream) => upstream.start(this.listenerFor(upstream))));
  }

  async stop(): Promise<void> {
    for (const subscription of this.statuses.splice(0)) subscription.unsubscribe();
    for (const subscription of this.answering.values()) subscription.unsubscribe();
    this.answering.clear();
    await Promise.all([...this.upstreams.values()].map((u) => u.close()));
  }

  private statusOf(upstream: Upstream): UpstreamStatus {
    const failure = upstream.failure && { message: upstream.failure.message, ...(upstream.failure.code ? { code: upstream.failure.code } : {}) };
    return { workerId: this.workerId, state: upstream.state, ...(failure ? { failure } : {}) };
  }

  private listenerFor(upstream: Upstream): UpstreamListener {
    return {
      state: (state) => this.onState(upstream, state),
      notification: (method) => {
        if (!method.endsWith('/list_changed')) return;
        const counts = this.changes.get(upstream.name) ?? {};
        counts[method] = (counts[method] ?? 0) + 1;
        this.changes.set(upstream.name, counts);
      },
    };
  }

  private onState(upstream: Upstream, state: UpstreamState): void {
    const answering = this.answering.get(upstream.name);
    if (state === 'ready' && !answering) {
      const handler = (body: unknown) => this.answer(upstream, body as UpstreamRpcRequest);
      this.answering.set(upstream.name, this.bus.reply(upstreamRpcSubject(upstream.name), handler, { queue: upstreamRpcQueue(upstream.name) }));
      this.log.info(`serving ${upstream.name} to the gateways`);
    } else if (state !== 'ready' && answering) {
      answering.unsubscribe();
      this.answering.delete(upstream.name);
    }
  }

  private async answer(upstream: Upstream, body: UpstreamRpcRequest): Promise<unknown> {
    switch (body.op) {
      case 'describe':
        return { workerId: this.workerId, serverCapabilities: upstream.serverCapabilities, ...(upstream.serverInfo ? { serverInfo: upstream.serverInfo } : {}), changes: this.changes.get(upstream.name) ?? {} } satisfies UpstreamDescription;
      case 'request':
        // Tool calls are governed jobs with their constraints; this channel must never become a way around them.
        if (body.method === 'tools/call') throw new GatewayError('GH_ERR_FORBIDDEN', 'tools/call runs as a job, never over the upstream channel');
        return upstream.request(body.method, body.params, { timeoutMs: body.timeoutMs });
      default:
        throw new GatewayError('GH_ERR_INVALID_REQUEST', `unknown upstream operation ${(body as { op?: unknown }).op}`);
    }
  }
}
