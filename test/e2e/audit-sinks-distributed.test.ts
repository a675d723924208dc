import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, waitFor } from '../helpers/gateway-harness.ts';
import { clusterAvailable, startCluster, text, type Cluster, type ToolResult } from '../helpers/distributed.ts';
import { SINK_SECRET, sinkReceiver, type SinkReceiver } from '../helpers/sink-receiver.ts';
import { RedisAuditStore } from '../../adapters/redis/audit-store.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';

// Two gateway replicas (`gatehouse start`) on NATS and Redis started here, one sink: each record reaches it once,
// in order, forwarded by one replica at a time (a lease in Redis), from a cursor kept in Redis.
describe.skipIf(!clusterAvailable())('audit sinks (distributed)', () => {
  let cluster: Cluster;
  let siem: SinkReceiver;
  const clients: Client[] = [];

  beforeAll(async () => {
    siem = await sinkReceiver();
    const sink = `{ name: siem, type: http, url: ${JSON.stringify(siem.url)}, headers: { Authorization: ${JSON.stringify(SINK_SECRET)} }, batchSize: 7, pollInterval: 50ms, retry: { initial: 20ms, max: 150ms } }`;
    cluster = await startCluster({ gateways: 2, workers: 1, audit: `sinks: [${sink}]` });
  });

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await cluster?.stop();
    await siem?.close();
  });

  it('delivers every record of calls made through both replicas once, in order, from one forwarder', async () => {
    for (const gateway of cluster.gateways) clients.push(await connectHttp(gateway.url));
    for (const client of clients) await waitFor(async () => (await client.listTools()).tools.some((t) => t.name === 'fx__echo'), 'the pool’s tools to be listed');
    for (let i = 0; i < 10; i++) {
      const result = (await clients[i % 2].callTool({ name: 'fx__echo', arguments: { text: `replica-${i % 2}-${i}` } })) as ToolResult;
      expect(text(result)).toContain(`replica-${i % 2}-${i}`);
    }
    const store = await RedisAuditStore.connect({ url: cluster.redis.url });
    let chain: AuditRecord[] = [];
    try {
      await waitFor(async () => {
        chain = [];
        for await (const record of store.read('default')) chain.push(record);
        return chain.filter((r) => r.type === 'job.succeeded').length === 10 && siem.delivered().length >= chain.length;
      }, 'the sink to receive every record');
    } finally {
      await store.close();
    }
    // Nothing missing, nothing twice, in chain order: two replicas did not send two copies.
    expect(siem.delivered()).toEqual(chain);
    expect(new Set(siem.requests.map((r) => r.body.instance)).size).toBe(1);
    expect(siem.requests[0].headers.authorization).toBe(SINK_SECRET);
  });
});
