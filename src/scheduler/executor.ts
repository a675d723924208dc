import type { Bus, Clock, ServerRequestHandler, Store, Subscription, Upstream } from '../ports.ts';

/** The way back to the client that made a job's call, for what an upstream sends while serving it. */
export interface JobClientLink {
  ask?: ServerRequestHandler;
  notify(method: string, params: Record<string, unknown> | undefined): void;
}
import { CAP_PROTOCOL_VERSION, JobStatus, resultPtr, Subjects, type BusPacket, type JobRequest, type JobResult } from '../protocol/cap.ts';
import type { CallToolResult } from '../protocol/mcp.ts';
import { asGatewayError } from '../errors.ts';
import { PAYLOAD_TTL_MS, type JobContext } from './job-context.ts';
import { limitOutput } from './output-limit.ts';

/** What the executor stores at `res:<job_id>`: the (constrained) result, or the upstream's own JSON-RPC error. */
export type StoredResult = { result: CallToolResult; truncated: boolean } | { rpcError: { code: number; message: string; data?: unknown } };

/**
 * Runs jobs against upstream MCP servers with their constraints enforced here, not handed to the upstream as
 * hints: the timeout (restarted by progress), the output cap, and cancellation from `sys.job.cancel`.
 * It takes jobs from `job.<pool>` as a queue member, so in distributed mode a worker process hosts the same code.
 */
export class Executor {
  private readonly running = new Map<string, AbortController>();
  private readonly subscriptions: Subscription[] = [];

  constructor(
    private readonly bus: Bus,
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly workerId: string,
    private readonly upstreamFor: (server: string) => Upstream | undefined,
    /** Where server→client requests (elicitation, sampling, roots) and logging for a job go: the client that called. */
    private readonly clientFor: (jobId: string) => JobClientLink | undefined = () => undefined,
  ) {}

  serve(pool: string): void {
    if (this.subscriptions.length === 0) {
      this.subscriptions.push(
        this.bus.subscribe(Subjects.cancel, (packet) => {
          if (packet.payload.kind === 'jobCancel') this.running.get(packet.payload.jobCancel.jobId)?.abort(packet.payload.jobCancel.reason);
        }),
      );
    }
    this.subscriptions.push(
      this.bus.subscribe(
        Subjects.pool(pool),
        (packet) => {
          if (packet.payload.kind === 'jobRequest') void this.execute(packet.payload.jobRequest);
        },
        { queue: `executors.${pool}` },
      ),
    );
  }

  stop(): void {
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    for (const controller of this.running.values()) controller.abort('the executor is stopping');
  }

  private async execute(job: JobRequest): Promise<void> {
    const started = this.clock.now();
    const controller = new AbortController();
    this.running.set(job.jobId, controller);
    let result: JobResult;
    try {
      const context = await this.store.get<JobContext>(job.contextPtr);
      if (!context) throw asGatewayError(new Error(`the job context ${job.contextPtr} is gone`));
      const upstream = this.upstreamFor(context.server);
      if (!upstream) throw asGatewayError(new Error(`no upstream named ${context.server}`), 'GH_ERR_UPSTREAM_UNAVAILABLE');
      const params: Record<string, unknown> = { name: context.tool, arguments: context.arguments };
      if (context.meta) params._meta = context.meta;
      const raw = (await upstream.request('tools/call', params, {
        signal: controller.signal,
        timeoutMs: context.constraints.timeoutMs,
        onProgress: context.wantsProgress
          ? (update) => void this.publish(Subjects.progress, job.jobId, { kind: 'jobProgress', jobProgress: { jobId: job.jobId, ...update } })
          : undefined,
        onServerRequest: this.clientFor(job.jobId)?.ask,
        onNotification: (method, params) => this.clientFor(job.jobId)?.notify(method, params),
      })) as CallToolResult;
      const stored: StoredResult = limitOutput(raw, context.constraints.maxOutputBytes);
      await this.store.set(resultPtr(job.jobId), stored, { ttlMs: PAYLOAD_TTL_MS });
      result = { jobId: job.jobId, status: JobStatus.SUCCEEDED, resultPtr: resultPtr(job.jobId), workerId: this.workerId, executionMs: this.clock.now() - started };
    } catch (err) {
      const error = asGatewayError(err);
      const rpcError = error.data?.rpcError as { code: number; message: string; data?: unknown } | undefined;
      if (rpcError) await this.store.set(resultPtr(job.jobId), { rpcError } satisfies StoredResult, { ttlMs: PAYLOAD_TTL_MS });
      result = {
        jobId: job.jobId,
        status: error.code === 'GH_ERR_UPSTREAM_TIMEOUT' ? JobStatus.TIMEOUT : error.code === 'GH_ERR_CANCELLED' ? JobStatus.CANCELLED : JobStatus.FAILED,
        ...(rpcError ? { resultPtr: resultPtr(job.jobId) } : {}),
        workerId: this.workerId,
        executionMs: this.clock.now() - started,
        errorCode: error.code,
        errorMessage: error.message,
      };
    } finally {
      this.running.delete(job.jobId);
    }
    await this.publish(Subjects.result, job.jobId, { kind: 'jobResult', jobResult: result });
  }

  private publish(subject: string, traceId: string, payload: BusPacket['payload']): Promise<void> {
    return this.bus.publish(subject, { traceId, senderId: this.workerId, createdAt: this.clock.now(), protocolVersion: CAP_PROTOCOL_VERSION, payload });
  }
}
