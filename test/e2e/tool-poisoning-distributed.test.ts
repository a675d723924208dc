import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisAuditStore } from '../../adapters/redis/audit-store.ts';
import { defaultConfig } from '../../src/config/load.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import { connectHttp, DEFAULT_POLICY, FIXTURE_UPSTREAM, ROOT, waitFor } from '../helpers/gateway-harness.ts';
import { gatehouse } from '../helpers/cli.ts';
import { startReplicaInProcess } from '../helpers/distributed.ts';
import { natsServerAvailable, startNatsServer, type NatsServer } from '../helpers/nats-server.ts';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';

// Two gateway replicas sharing real NATS and Redis, each with its own copy of the fixture upstream serving poisoned
// tools (FIXTURE_POISONED): the findings are recorded on the pins in Redis, so they are audited once for both
// replicas, `gatehouse tools` shows them, and one accept releases the tool everywhere.
const available = natsServerAvailable() && redisServerAvailable();

let nats: NatsServer | undefined;
let redis: RedisServer | undefined;
const closers: (() => Promise<void>)[] = [];

async function startReplica() {
  const config = defaultConfig({
    mode: 'distributed',
    nats: { url: nats!.url, jetstream: false },
    redis: { url: redis!.url },
    dataDir: mkdtempSync(join(tmpdir(), 'gh-poison-')),
    policies: [DEFAULT_POLICY],
    upstreams: { fx: { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: { FIXTURE_POISONED: '1' }, cwd: ROOT, timeout: 60_000 } },
  });
  const replica = await startReplicaInProcess(config);
  const client = await connectHttp(replica.url, 'modern');
  closers.push(async () => {
    await client.close();
    await replica.close();
  });
  return client;
}

async function auditRecords(): Promise<AuditRecord[]> {
  const store = await RedisAuditStore.connect({ url: redis!.url });
  try {
    const records: AuditRecord[] = [];
    for await (const record of store.read('default')) records.push(record);
    return records;
  } finally {
    await store.close();
  }
}

const listed = async (client: Awaited<ReturnType<typeof connectHttp>>) => (await client.listTools()).tools.map((t) => t.name);

describe.skipIf(!available)('poisoned tool definitions, distributed', () => {
  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await Promise.allSettled([nats?.stop(), redis?.stop()]);
  });

  it('records the findings on the shared pin: both replicas hold the tool, it is audited once, and one accept releases it for both', async () => {
    const first = await startReplica();
    expect(await listed(first)).not.toContain('fx__add');
    const suspected = async () => (await auditRecords()).filter((r) => r.type === 'tool.poisoning_suspected' && (r.data as { tool: string }).tool === 'fx__add');
    await waitFor(async () => (await suspected()).length === 1, 'tool.poisoning_suspected for fx__add');
    const second = await startReplica();
    expect(await listed(second)).not.toContain('fx__add');
    const refused = await second.callTool({ name: 'fx__add', arguments: { a: 1, b: 1 } });
    expect((refused._meta?.['gatehouse/error'] as { code?: string } | undefined)?.code).toBe('GH_ERR_TOOL_QUARANTINED');

    const dir = mkdtempSync(join(tmpdir(), 'gh-poison-cli-'));
    const config = join(dir, 'gatehouse.yaml');
    writeFileSync(config, ['mode: distributed', `nats: { url: ${JSON.stringify(nats!.url)} }`, `redis: { url: ${JSON.stringify(redis!.url)} }`, `dataDir: ${JSON.stringify(dir)}`].join('\n'));
    const pins = await gatehouse(['tools', 'pins', '--json', '--config', config]);
    expect(pins.code, pins.stderr).toBe(0);
    const add = JSON.parse(pins.stdout).find((p: { tool: string }) => p.tool === 'fx__add');
    expect(add.state).toBe('suspect');
    expect(add.findings.map((f: { kind: string }) => f.kind)).toContain('model-instructions');
    const accepted = await gatehouse(['tools', 'accept', 'fx__add', '--as', 'ops', '--config', config]);
    expect(accepted.code, accepted.stderr).toBe(0);
    for (const client of [first, second]) {
      await waitFor(async () => (await listed(client)).includes('fx__add'), 'fx__add listed on each replica');
      expect((await client.callTool({ name: 'fx__add', arguments: { a: 1, b: 1 } })).isError).toBeFalsy();
    }
    expect(await suspected()).toHaveLength(1);
  });
});
