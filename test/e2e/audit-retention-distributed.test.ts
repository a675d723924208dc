import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, waitFor } from '../helpers/gateway-harness.ts';
import { clusterAvailable, startCluster, text, type Cluster, type ToolResult } from '../helpers/distributed.ts';
import { SINK_SECRET, firstOfEach, sinkReceiver, type SinkReceiver } from '../helpers/sink-receiver.ts';
import { gatehouse } from '../helpers/cli.ts';
import { RedisAuditStore } from '../../adapters/redis/audit-store.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';

// Two gateway replicas trim the Redis chain (audit.retention, every 200 ms, maxAge 1 ms): nothing goes while the
// sink is behind, then the oldest records go up to signed checkpoints, each once although both replicas run it,
// and `audit verify --config` and `audit query --config` work from the anchor.
describe.skipIf(!clusterAvailable())('audit retention (distributed)', () => {
  let cluster: Cluster;
  let siem: SinkReceiver;
  let store: RedisAuditStore;
  const clients: Client[] = [];

  beforeAll(async () => {
    siem = await sinkReceiver();
    await siem.setMode(503);
    const sink = `{ name: siem, type: http, url: ${JSON.stringify(siem.url)}, headers: { Authorization: ${JSON.stringify(SINK_SECRET)} }, batchSize: 7, pollInterval: 50ms, retry: { initial: 20ms, max: 150ms } }`;
    cluster = await startCluster({ gateways: 2, workers: 1, audit: `sinks: [${sink}], retention: { maxAge: 1ms, interval: 200ms }` });
    store = await RedisAuditStore.connect({ url: cluster.redis.url });
  });

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await store?.close();
    await cluster?.stop();
    await siem?.close();
  });

  const call = async (i: number) => {
    const result = (await clients[i % 2].callTool({ name: 'fx__echo', arguments: { text: `call-${i}` } })) as ToolResult;
    expect(text(result)).toContain(`call-${i}`);
  };
  const chain = async () => {
    const records: AuditRecord[] = [];
    for await (const record of store.read('default')) records.push(record);
    return records;
  };

  it('holds back while the sink is behind, then removes records once, up to checkpoints; verify and query go on from the anchor', async () => {
    for (const gateway of cluster.gateways) clients.push(await connectHttp(gateway.url));
    for (const client of clients) await waitFor(async () => (await client.listTools()).tools.some((t) => t.name === 'fx__echo'), 'the pool’s tools to be listed');
    for (let i = 0; i < 12; i++) await call(i);
    await waitFor(() => cluster.gateways.some((g) => g.output().includes('audit retention held back')), 'retention to hold back for the failing sink');
    expect(await store.anchor('default')).toBeUndefined();
    expect((await chain())[0].seq).toBe(1);

    await siem.setMode('accept');
    // Up to the newest checkpoint: the records after it stay until a call's records bring the next one.
    const newest = (await chain()).filter((r) => r.type === 'audit.checkpoint').at(-1)!;
    await waitFor(async () => ((await store.anchor('default'))?.seq ?? 0) >= newest.seq, 'retention to remove the delivered calls');
    // The anchor and the list, read between two trims.
    let anchor: AuditRecord | undefined;
    let kept: AuditRecord[] = [];
    await waitFor(async () => {
      anchor = await store.anchor('default');
      kept = await chain();
      return kept[0].seq === anchor!.seq + 1;
    }, 'the anchor and the list read between two trims');
    const anchorSeq = anchor!.seq;
    expect(anchor!.type).toBe('audit.checkpoint');

    // Every removal is recorded once, and together they cover the removed records once: the replicas never both trimmed.
    await waitFor(() => firstOfEach(siem.delivered()).length >= kept.at(-1)!.seq, 'the sink to receive every record');
    const pruned = firstOfEach(siem.delivered()).filter((r) => r.type === 'audit.pruned');
    expect(pruned.length).toBeGreaterThan(0);
    pruned.forEach((r, i) => expect((r.data as { fromSeq: number }).fromSeq).toBe(i === 0 ? 1 : (pruned[i - 1].data as { throughSeq: number }).throughSeq + 1));

    // Calls the sink cannot take stay, whatever their age: verify and query answer from the anchor.
    await siem.setMode(503);
    const before = await chain();
    for (let i = 12; i < 16; i++) await call(i);
    const fresh = (await chain()).filter((r) => r.type === 'job.submitted' && r.seq > before.at(-1)!.seq).map((r) => r.jobId);
    expect(fresh).toHaveLength(4);

    const verified = await gatehouse(['audit', 'verify', '--config', cluster.config]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/anchored by checkpoint seq \d+/);

    // An export carries the anchor: it verifies offline against the replicas' public key.
    const out = join(cluster.dir, 'export.jsonl');
    expect((await gatehouse(['audit', 'export', '--config', cluster.config, '--out', out])).code).toBe(0);
    const pubkey = await gatehouse(['audit', 'pubkey', '--config', cluster.config]);
    expect(pubkey.code).toBe(0);
    writeFileSync(join(cluster.dir, 'audit.pub'), pubkey.stdout);
    const offline = await gatehouse(['audit', 'verify', '--file', out, '--pubkey', join(cluster.dir, 'audit.pub')]);
    expect(offline.code).toBe(0);
    expect(offline.stdout).toMatch(/anchored by checkpoint seq \d+/);

    const query = await gatehouse(['audit', 'query', '--config', cluster.config, '--json']);
    expect(query.code).toBe(0);
    const calls = (JSON.parse(query.stdout) as { calls: { jobId: string; outcome: string }[] }).calls;
    expect(calls.filter((c) => fresh.includes(c.jobId)).map((c) => c.outcome)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    // The calls removed with their records are gone from the answers.
    const removed = new Set(firstOfEach(siem.delivered()).filter((r) => r.type === 'job.submitted' && r.seq <= anchorSeq).map((r) => r.jobId));
    expect(removed.size).toBeGreaterThan(0);
    expect(calls.filter((c) => removed.has(c.jobId))).toEqual([]);
    for (const gateway of cluster.gateways) expect(gateway.output()).not.toContain('audit retention failed');
  });
});
