import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { NatsBus } from '../../adapters/nats/bus.ts';
import { RedisStore } from '../../adapters/redis/store.ts';
import { systemClock } from '../../adapters/memory/clock.ts';
import { Executor } from '../../src/scheduler/executor.ts';
import { PAYLOAD_TTL_MS, type JobContext } from '../../src/protocol/job-context.ts';
import { GatewayError } from '../../src/errors.ts';
import { silentLogger } from '../../src/log.ts';
import { ulid } from '../../src/protocol/ulid.ts';
import { encodeBusPacket } from '../../src/protocol/cap-wire.ts';
import { CAP_PROTOCOL_VERSION, contextPtr, JobPriority, JobStatus, Subjects, type BusPacket, type JobResult } from '../../src/protocol/cap.ts';
import type { Bus, Upstream } from '../../src/ports.ts';
import type { CallToolResult } from '../../src/protocol/mcp.ts';
import { connectHttp, waitFor } from '../helpers/gateway-harness.ts';
import { clusterAvailable, startCluster, text, type Cluster, type ToolResult, type WorkerProcess } from '../helpers/distributed.ts';

// The README: a call that is not idempotent "is never run again ... The claim in Redis makes this hold even when a
// job is delivered twice." Here the same CAP job reaches workers twice over real NATS, with its claim in real
// Redis: sent straight to two worker processes, stored twice in JetStream, and redelivered by JetStream after a
// worker failed to publish its result. Each case fails if the executor's claim check is removed.
const available = clusterAvailable();

/** A CAP job for `server`'s `tool`, as a replica sends it; its context must be stored at `ctx:<jobId>`. */
function jobPacket(jobId: string, server: string, tool: string): BusPacket {
  return {
    traceId: jobId,
    senderId: 'test-replica',
    createdAt: Date.now(),
    protocolVersion: CAP_PROTOCOL_VERSION,
    payload: {
      kind: 'jobRequest',
      jobRequest: {
        jobId,
        topic: `mcp.${server}.${tool}`,
        priority: JobPriority.INTERACTIVE,
        contextPtr: contextPtr(jobId),
        env: {},
        tenantId: 'default',
        principalId: 'tester',
        // No `mcp.idempotent` label: the tool may not run twice.
        labels: { 'mcp.server': server, 'mcp.tool': tool },
        meta: { tenantId: 'default', actorId: 'tester', actorType: 'user', capability: tool, riskTags: ['write'], requires: [], labels: {} },
      },
    },
  };
}

const context = (server: string, tool: string, args: Record<string, unknown>): JobContext => ({ server, tool, arguments: args, constraints: {}, wantsProgress: false });

/** Every CAP result seen on `sys.job.result` or on a replica's own subject (`sys.job.reply.<replica>`), by job id. */
function collectResults(bus: Bus): (jobId: string, count: number) => Promise<JobResult[]> {
  const results: JobResult[] = [];
  for (const subject of [Subjects.result, Subjects.reply('*')]) bus.subscribe(subject, (p) => void (p.payload.kind === 'jobResult' && results.push(p.payload.jobResult)));
  return async (jobId, count) => {
    await waitFor(() => results.filter((r) => r.jobId === jobId).length >= count, `${count} results for ${jobId}`);
    return results.filter((r) => r.jobId === jobId);
  };
}

const byStatus = (results: JobResult[]) => results.map((r) => [r.status, r.errorCode ?? null]).sort();

describe.skipIf(!available)('a job delivered twice to worker processes (real NATS with JetStream, real Redis)', () => {
  let cluster: Cluster;
  let bus: NatsBus;
  let store: RedisStore;
  let resultsOf: (jobId: string, count: number) => Promise<JobResult[]>;
  const workerId = (worker: WorkerProcess) => /Gatehouse worker (\S+)/.exec(worker.output())![1];

  beforeAll(async () => {
    cluster = await startCluster({ gateways: 0, workers: 2, jetstream: true });
    bus = await NatsBus.connect({ url: cluster.nats.url, name: 'test-replica', log: silentLogger });
    store = await RedisStore.connect({ url: cluster.redis.url });
    resultsOf = collectResults(bus);
  });

  afterAll(async () => {
    try {
      await Promise.allSettled([bus?.close(), store?.close()]);
    } finally {
      await cluster?.stop();
    }
  });

  it('sent straight to both workers at once: the write runs once, and the other delivery ends GH_ERR_EXECUTION_IN_DOUBT', async () => {
    const jobId = ulid();
    await store.set(contextPtr(jobId), context('fx', 'write', { key: 'direct-twice', value: 'v' }), { ttlMs: PAYLOAD_TTL_MS });
    const packet = jobPacket(jobId, 'fx', 'write');
    await Promise.all(cluster.workers.map((w) => bus.publish(Subjects.worker(workerId(w)), packet)));
    expect(byStatus(await resultsOf(jobId, 2))).toEqual([
      [JobStatus.SUCCEEDED, null],
      [JobStatus.FAILED, 'GH_ERR_EXECUTION_IN_DOUBT'],
    ]);
    expect(cluster.writes('direct-twice=v')).toBe(1);
  });

  it('stored twice in the pool’s JetStream stream (a publisher that did not deduplicate): the write runs once', async () => {
    const jobId = ulid();
    await store.set(contextPtr(jobId), context('fx', 'write', { key: 'stored-twice', value: 'v' }), { ttlMs: PAYLOAD_TTL_MS });
    const raw = await connect({ servers: cluster.nats.url });
    try {
      const js = jetstream(raw);
      const bytes = encodeBusPacket(jobPacket(jobId, 'fx', 'write'));
      // No message id: JetStream keeps both, and the pool's durable consumer hands each to a worker.
      await js.publish(Subjects.pool('tools'), bytes);
      await js.publish(Subjects.pool('tools'), bytes);
    } finally {
      await raw.close();
    }
    expect(byStatus(await resultsOf(jobId, 2))).toEqual([
      [JobStatus.SUCCEEDED, null],
      [JobStatus.FAILED, 'GH_ERR_EXECUTION_IN_DOUBT'],
    ]);
    expect(cluster.writes('stored-twice=v')).toBe(1);
  });
});

describe.skipIf(!available)('a job JetStream redelivers to another worker after the first could not publish its result (real NATS and Redis)', () => {
  let cluster: Cluster;
  const opened: { close(): Promise<void> }[] = [];
  const executors: Executor[] = [];

  beforeAll(async () => {
    cluster = await startCluster({ gateways: 0, workers: 0, jetstream: true });
  });

  afterAll(async () => {
    for (const executor of executors) executor.stop();
    try {
      await Promise.allSettled(opened.map((o) => o.close()));
    } finally {
      await cluster?.stop();
    }
  });

  it('runs the tool once: the redelivery finds the claim in Redis and ends GH_ERR_EXECUTION_IN_DOUBT', async () => {
    // A pool of its own, redelivered 100 ms after a handler fails, served by two executors with their own NATS and
    // Redis connections (two workers), whose upstreams share one side-effect count.
    const jetstreamOptions = { stream: 'TEST_REDELIVERY', subjects: [Subjects.pool('twice')], redeliverDelayMs: 100 };
    const runs: string[] = [];
    const upstream = {
      name: 'up',
      state: 'ready',
      request: async (_method: string, params: Record<string, unknown>): Promise<CallToolResult> => {
        runs.push(JSON.stringify(params.arguments));
        return { content: [{ type: 'text', text: 'wrote' }] };
      },
    } as unknown as Upstream;
    // NATS refuses the first result any worker publishes, once: that worker's delivery fails, so JetStream delivers
    // the job again (to either worker).
    let resultPublishes = 0;
    const failingFirstResult = (real: NatsBus): Bus => ({
      publish: (subject, packet) =>
        subject === Subjects.result && resultPublishes++ === 0 ? Promise.reject(new GatewayError('GH_ERR_BUS_UNAVAILABLE', 'NATS is down')) : real.publish(subject, packet),
      subscribe: (subject, handler, options) => real.subscribe(subject, handler, options),
      request: (subject, body, options) => real.request(subject, body, options),
      reply: (subject, handler, options) => real.reply(subject, handler, options),
      close: () => real.close(),
    });
    for (const id of ['w-a', 'w-b']) {
      const bus = await NatsBus.connect({ url: cluster.nats.url, name: id, log: silentLogger, jetstream: jetstreamOptions });
      const store = await RedisStore.connect({ url: cluster.redis.url });
      opened.push(bus, store);
      const executor = new Executor(failingFirstResult(bus), store, systemClock, id, () => upstream);
      executor.serve('twice');
      executors.push(executor);
    }
    const replica = await NatsBus.connect({ url: cluster.nats.url, name: 'test-replica', log: silentLogger, jetstream: jetstreamOptions });
    const store = await RedisStore.connect({ url: cluster.redis.url });
    opened.push(replica, store);
    const resultsOf = collectResults(replica);

    const jobId = ulid();
    await store.set(contextPtr(jobId), context('up', 'write', { key: 'redelivered' }), { ttlMs: PAYLOAD_TTL_MS });
    await replica.publish(Subjects.pool('twice'), jobPacket(jobId, 'up', 'write'));
    // The first result never went out; the one that did is the redelivery's.
    expect(byStatus(await resultsOf(jobId, 1))).toEqual([[JobStatus.FAILED, 'GH_ERR_EXECUTION_IN_DOUBT']]);
    expect(resultPublishes).toBe(2);
    expect(runs).toEqual(['{"key":"redelivered"}']);
  });
});

describe.skipIf(!available)('a job JetStream keeps past its call’s end (real NATS with JetStream, real Redis, real processes)', () => {
  let cluster: Cluster;
  let bus: NatsBus;

  beforeAll(async () => {
    // Calls end 1 s (plus the 5 s grace) after they were sent, worker or not.
    cluster = await startCluster({ gateways: 1, workers: 1, jetstream: true, upstreamTimeout: '1s' });
    bus = await NatsBus.connect({ url: cluster.nats.url, name: 'test-observer', log: silentLogger });
  });

  afterAll(async () => {
    try {
      await bus?.close();
    } finally {
      await cluster?.stop();
    }
  });

  it('is not run by a worker that takes it after the call ended GH_ERR_UPSTREAM_TIMEOUT: its arguments are gone', async () => {
    // README: "after that it ends GH_ERR_UPSTREAM_TIMEOUT, goes to the dead-letter queue, and a worker that takes it
    // later finds its arguments gone and does not run it."
    const resultsOf = collectResults(bus);
    const client = await connectHttp(cluster.gateways[0].url);
    try {
      await waitFor(async () => (await client.listTools()).tools.some((t) => t.name === 'fx__slow_write'), 'the pool’s tools to be listed');
      await Promise.all(cluster.workers.splice(0).map((w) => w.stop()));
      const ended = (await client.callTool({ name: 'fx__slow_write', arguments: { key: 'too-late', delayMs: 0 } })) as ToolResult;
      expect(ended.isError).toBe(true);
      expect(text(ended)).toContain('GH_ERR_UPSTREAM_TIMEOUT');
      const jobId = (ended._meta?.['gatehouse/job'] as { jobId: string }).jobId;
      cluster.workers.push(await cluster.addWorker('late'));
      // The late worker takes the job from the stream and answers it (a positive signal): not run, the context is gone.
      const [late] = await resultsOf(jobId, 1);
      expect(late).toMatchObject({ status: JobStatus.FAILED, workerId: expect.stringMatching(/^wk-tools-/) });
      expect(cluster.writes('too-late')).toBe(0);
    } finally {
      await client.close();
    }
  });
});
