// The trifecta over two replicas (in this process) on real NATS and Redis, with the bundled
// policies/session-safety.yaml: the labels one replica set (a rule's on the private read, the scanner's on the
// injected page) reach the other's decision, so the egress call is held wherever it lands; a clean session runs it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp } from '../helpers/gateway-harness.ts';
import { fixtureReplicaConfig, startReplicaInProcess, type Replica } from '../helpers/distributed.ts';
import { natsServerAvailable, startNatsServer, type NatsServer } from '../helpers/nats-server.ts';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { INJECTED, SAFETY_BASE_POLICY, SESSION_SAFETY } from '../helpers/session-safety-policy.ts';

const available = natsServerAvailable() && redisServerAvailable();
const dir = mkdtempSync(join(tmpdir(), 'gh-session-safety-dist-'));
let nats: NatsServer;
let redis: RedisServer;
let replicas: Replica[] = [];
let clients: Client[] = [];

type Result = Awaited<ReturnType<Client['callTool']>>;
const codeOf = (r: Result) => ((r._meta as Record<string, any> | undefined)?.['gatehouse/error']?.code as string | undefined) ?? 'ok';
const call = (replica: number, session: string, name: string, args: Record<string, unknown>) => clients[replica].callTool({ name, arguments: args, _meta: { 'gatehouse/session': session } });

describe.skipIf(!available)('the trifecta over two replicas', () => {
  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
    writeFileSync(join(dir, 'base.yaml'), SAFETY_BASE_POLICY);
    const config = () => fixtureReplicaConfig({ natsUrl: nats.url, redisUrl: redis.url, dir, policies: [join(dir, 'base.yaml'), SESSION_SAFETY], sideEffects: join(dir, 'writes.log') });
    replicas = await Promise.all([startReplicaInProcess(config()), startReplicaInProcess(config())]);
    clients = await Promise.all(replicas.map((r) => connectHttp(r.url, 'modern')));
  });
  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.allSettled(replicas.map((r) => r.close()));
    await Promise.allSettled([nats?.stop(), redis?.stop()]);
  });

  it('moves the labels across replicas: private read on one, injected page on the other, egress held on both', async () => {
    expect(codeOf(await call(0, 'tainted', 'fx__meta', {}))).toBe('ok');
    expect(codeOf(await call(1, 'tainted', 'fx__echo', { text: INJECTED }))).toBe('ok');
    const held = await Promise.all([call(0, 'tainted', 'fx__big', { bytes: 10 }), call(1, 'tainted', 'fx__big', { bytes: 20 })]);
    expect(held.map(codeOf)).toEqual(['GH_ERR_APPROVAL_PENDING', 'GH_ERR_APPROVAL_PENDING']);
    expect(held.map((r) => (r._meta as Record<string, any>)['gatehouse/job'].ruleIds)).toEqual([['session-safety/trifecta-egress'], ['session-safety/trifecta-egress']]);
  });

  it('runs the same call in a clean session on either replica', async () => {
    expect([codeOf(await call(0, 'clean', 'fx__big', { bytes: 10 })), codeOf(await call(1, 'clean', 'fx__big', { bytes: 20 }))]).toEqual(['ok', 'ok']);
  });
});
