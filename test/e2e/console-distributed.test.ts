// The console's live feed in distributed mode, with real processes: NATS and Redis started here, two gateway
// replicas and a worker. The feed tails the one audit chain in Redis, so a call served by one replica appears in
// the feed of the other; the dead-letter queue in Redis is counted on every replica's Upstreams page.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp } from '../helpers/gateway-harness.ts';
import { clusterAvailable, startCluster, waitForLiveWorkers, type Cluster } from '../helpers/distributed.ts';
import { eventReader } from '../helpers/event-stream.ts';
import type { AuditCall } from '../../src/audit/query.ts';
import { RedisJobLedger } from '../../adapters/redis/job-ledger.ts';
import { deadLetter } from '../contract/job-ledger.contract.ts';

const available = clusterAvailable();

describe.skipIf(!available)('the live feed in distributed mode', () => {
  let cluster: Cluster;
  let client: Client;

  beforeAll(async () => {
    cluster = await startCluster({ gateways: 2, workers: 1 });
    await waitForLiveWorkers(cluster.gateways[0], 1);
    client = await connectHttp(cluster.gateways[0].url);
  }, 120_000);

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('shows on one replica the calls another serves, as they happen, filtered on the server', async () => {
    const other = cluster.gateways[1].url.replace(/\/mcp$/, '');
    const response = await fetch(`${other}/activity/stream?tool=fx__echo`, { headers: { accept: 'text/event-stream' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = eventReader(response.body!);
    const first = await events.next(); // the backlog, before any call
    expect(first?.event).toBe('calls');
    expect(JSON.parse(first!.data)).toEqual([]);

    await client.callTool({ name: 'fx__write', arguments: { key: 'not-shown', value: 'v' } }); // answered at once: pending approval
    const echoed = await client.callTool({ name: 'fx__echo', arguments: { text: 'across replicas' } });
    expect(echoed.isError).toBeFalsy();

    const seen = new Map<string, AuditCall>();
    while (![...seen.values()].some((c) => c.outcome === 'succeeded')) {
      const event = await events.next();
      if (!event) throw new Error('the stream ended');
      for (const call of JSON.parse(event.data) as AuditCall[]) seen.set(call.jobId, call);
    }
    const calls = [...seen.values()];
    expect(calls.every((c) => c.tool === 'fx__echo')).toBe(true); // the write is filtered out on the server
    expect(calls.find((c) => c.outcome === 'succeeded')).toMatchObject({ principal: expect.any(String), decision: 'allow', ruleIds: ['read-only-tools'], client: { era: 'legacy' } });
    await events.cancel();
  }, 60_000);

  it('counts the dead-letter queue in Redis on the Upstreams page (for an admin) and in /metrics, on every replica', async () => {
    const ledger = await RedisJobLedger.connect({ url: cluster.redis.url });
    try {
      await ledger.deadLetter(deadLetter('01JDEADCONSOLE000000000001', 1_000));
      await ledger.deadLetter(deadLetter('01JDEADCONSOLE000000000002', 2_000));
    } finally {
      await ledger.close();
    }
    for (const gateway of cluster.gateways) {
      const base = gateway.url.replace(/\/mcp$/, '');
      // The local user on loopback without keys is an admin.
      expect(await (await fetch(`${base}/upstreams`)).text()).toMatch(/Dead-letter queue: <strong>2<\/strong> jobs/);
      expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/^gatehouse_dlq_jobs 2$/m);
    }
  });
});
