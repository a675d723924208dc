import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, waitFor } from '../helpers/gateway-harness.ts';
import { gatehouse } from '../helpers/cli.ts';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { approvalId, clusterAvailable, startCluster, text, waitForLiveWorkers, type Cluster, type ToolResult } from '../helpers/distributed.ts';

// Chaos on a real cluster (JetStream on, Redis persisted): after each case no approval is lost, no
// non-idempotent call ran twice, the audit chain verifies with no gaps, and every client got an answer.
const available = clusterAvailable();

describe.skipIf(!available)('chaos: distributed mode survives its parts failing', () => {
  let cluster: Cluster;
  let client: Client;
  const call = (name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args }) as Promise<ToolResult>;
  const health = async () => {
    const response = await fetch(cluster.gateways[0].url.replace(/\/mcp$/, '/healthz'));
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const echoWorks = async () => !(await call('fx__echo', { text: 'ping' }).catch(() => ({ isError: true }) as ToolResult)).isError;
  /** How many job requests the pool's JetStream stream holds (GATEHOUSE_JOBS keeps `job.tools`). */
  const storedJobs = async () => {
    const nc = await connect({ servers: cluster.nats.url });
    try {
      return (await (await jetstreamManager(nc)).streams.info('GATEHOUSE_JOBS')).state.messages;
    } finally {
      await nc.close();
    }
  };

  beforeAll(async () => {
    cluster = await startCluster({ jetstream: true, persistentRedis: true });
    client = await connectHttp(cluster.gateways[0].url);
    await waitFor(async () => (await client.listTools()).tools.some((t) => t.name === 'fx__slow_write'), 'the pool’s tools to be listed');
  });

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await cluster?.stop();
  });

  afterEach(async () => {
    // Every case leaves a chain that verifies end to end, with no gap.
    const verified = await gatehouse(['audit', 'verify', '--config', cluster.config]);
    expect(verified.stdout).toMatch(/tenant default: OK/);
    expect(verified.code).toBe(0);
  });

  it('Redis restarts (persisted): calls meanwhile get a coded error, never a hang; a pending approval survives and service resumes', async () => {
    const args = { key: 'through-redis-restart', value: 'v' };
    const id = approvalId(await call('fx__write', args));
    await cluster.redis.kill();
    await waitFor(async () => (await health()).status === 503, '/healthz to report Redis down');
    expect((await health()).body).toMatchObject({ ok: false, links: { redis: 'down' } });
    try {
      // Refused with a code, as a tool error or a JSON-RPC error, rather than hanging.
      const during = await call('fx__echo', { text: 'redis is down' }).then(
        (result) => (expect(result.isError).toBe(true), text(result)),
        (err: { data?: { code?: string } }) => String(err.data?.code),
      );
      expect(during).toMatch(/GH_ERR_(STATE|AUDIT)_UNAVAILABLE/);
    } finally {
      await cluster.redis.restart();
    }
    await waitFor(echoWorks, 'service to resume after Redis returns');
    expect(await gatehouse(['approvals', 'approve', id, '--as', 'bob', '--config', cluster.config])).toMatchObject({ code: 0 });
    expect(text(await call('fx__write', args))).toBe('wrote through-redis-restart');
    expect(cluster.writes('through-redis-restart=v')).toBe(1);
  });

  it('NATS down: a call gets a coded refusal at once instead of hanging, and service resumes by itself when NATS returns', async () => {
    await cluster.nats.kill();
    // A load balancer's check takes the replica out while it cannot serve, and puts it back once it can.
    await waitFor(async () => (await health()).status === 503, '/healthz to report NATS down');
    expect((await health()).body).toMatchObject({ ok: false, links: { nats: 'down', redis: 'up' } });
    try {
      const during = await call('fx__slow_write', { key: 'nats-is-down', delayMs: 0 }).then(
        (result) => (expect(result.isError).toBe(true), text(result)),
        (err: { data?: { code?: string } }) => String(err.data?.code),
      );
      expect(during).toMatch(/GH_ERR_(BUS_UNAVAILABLE|NO_WORKER)/);
    } finally {
      await cluster.nats.restart();
    }
    await waitFor(echoWorks, 'service to resume after NATS returns');
    expect(cluster.writes('nats-is-down')).toBe(0);
    // Up again, with every worker heard from again.
    await waitFor(async () => {
      const { status, body } = await health();
      return status === 200 && (body.links as { workers: Record<string, number> }).workers.tools === cluster.workers.length;
    }, '/healthz to report service and every worker again');
    expect((await health()).body).toMatchObject({ ok: true, links: { nats: 'up', redis: 'up' } });
  });

  it('NATS restarts while JetStream holds a job no worker has taken: it runs once when a worker comes, and the caller gets its result', async () => {
    await Promise.all(cluster.workers.splice(0).map((w) => w.stop()));
    const kept = await storedJobs();
    const waiting = call('fx__slow_write', { key: 'kept-by-jetstream', delayMs: 0 });
    // The gateway has no live worker, so the job waits in the pool's stream; once it is stored there, NATS crashes
    // and comes back.
    await waitFor(async () => (await storedJobs()) > kept, 'the job to be stored in the pool’s stream');
    await cluster.nats.restart();
    cluster.workers.push(await cluster.addWorker('after-nats-restart'));
    const result = await waiting;
    expect(text(result)).toBe('wrote kept-by-jetstream slowly');
    expect(cluster.writes('kept-by-jetstream')).toBe(1);
  });

  it('a worker partitioned mid-call (SIGSTOP, then SIGCONT): the non-idempotent call ends in doubt, never runs twice, and the worker serves again', async () => {
    cluster.workers.push(await cluster.addWorker('second'));
    await waitForLiveWorkers(cluster.gateways[0], 2);
    const running = call('fx__slow_write', { key: 'partitioned', delayMs: 10_000 }); // long enough to be frozen before it answers, even on a loaded machine
    await waitFor(() => cluster.workerThatWrote('partitioned') !== undefined, 'the call to start on a worker');
    const frozen = cluster.workerThatWrote('partitioned')!;
    frozen.child.kill('SIGSTOP');
    const result = await running;
    expect(text(result)).toContain('GH_ERR_EXECUTION_IN_DOUBT');
    frozen.child.kill('SIGCONT');
    await waitFor(echoWorks, 'service after the partition heals');
    for (let i = 0; i < 6; i++) expect((await call('fx__slow_write', { key: `after-partition-${i}`, delayMs: 0 })).isError).toBeFalsy();
    expect(cluster.writes('partitioned')).toBe(1);
  });
});
