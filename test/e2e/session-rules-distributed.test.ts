// Session-aware rules in distributed mode: two gateway replicas (in this process) on real NATS and Redis servers,
// official SDK clients on each. A 2026-07-28 client's session (`_meta["gatehouse/session"]`) spans replicas, as
// behind a load balancer: the facts one replica counted reach the other's rules, and the loop breaker and budgets
// trip exactly at their limits when 20 calls race over both replicas (the check and the count are one Redis script).
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { connectHttp } from '../helpers/gateway-harness.ts';
import { fixtureReplicaConfig, startReplicaInProcess, type Replica } from '../helpers/distributed.ts';
import { natsServerAvailable, startNatsServer, type NatsServer } from '../helpers/nats-server.ts';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { SESSION_POLICY } from '../helpers/session-policy.ts';

const available = natsServerAvailable() && redisServerAvailable();


const dir = mkdtempSync(join(tmpdir(), 'gh-session-dist-'));
const writes = join(dir, 'writes.log');
let nats: NatsServer;
let redis: RedisServer;
let replicas: Replica[] = [];
let clients: Client[] = [];
/** One 2026-07-28 client named `counter` on each replica: the policy's `counted` rule is theirs. */
let counters: Client[] = [];

type Result = Awaited<ReturnType<Client['callTool']>>;
const codeOf = (r: Result) => ((r._meta as Record<string, any> | undefined)?.['gatehouse/error']?.code as string | undefined) ?? 'ok';
const tally = (results: Result[]) => results.reduce<Record<string, number>>((n, r) => ((n[codeOf(r)] = (n[codeOf(r)] ?? 0) + 1), n), {});
/** The i-th call of a session goes to replica i % 2. */
const call = (i: number, session: string, name: string, args: Record<string, unknown> = {}) => clients[i % 2].callTool({ name, arguments: args, _meta: { 'gatehouse/session': session } });

describe.skipIf(!available)('session-aware rules over two replicas', () => {
  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
    writeFileSync(join(dir, 'policy.yaml'), SESSION_POLICY);
    const config = () => fixtureReplicaConfig({ natsUrl: nats.url, redisUrl: redis.url, dir, policies: [join(dir, 'policy.yaml')], sideEffects: writes });
    replicas = await Promise.all([startReplicaInProcess(config()), startReplicaInProcess(config())]);
    clients = await Promise.all(replicas.map((r) => connectHttp(r.url, 'modern')));
    counters = await Promise.all(
      replicas.map(async (r) => {
        const c = new Client({ name: 'counter', version: '1' }, { capabilities: {}, versionNegotiation: { mode: { pin: '2026-07-28' } } } as never);
        await c.connect(new StreamableHTTPClientTransport(new URL(r.url)));
        return c;
      }),
    );
  });
  afterAll(async () => {
    await Promise.allSettled([...clients, ...counters].map((c) => c.close()));
    await Promise.allSettled(replicas.map((r) => r.close()));
    await Promise.allSettled([nats?.stop(), redis?.stop()]);
  });

  it('moves session facts across replicas: what one counted, the other’s rules read', async () => {
    const echo = (i: number, session: string) => counters[i % 2].callTool({ name: 'fx__echo', arguments: { text: `c${i}` }, _meta: { 'gatehouse/session': session } });
    expect([codeOf(await echo(0, 'facts')), codeOf(await echo(1, 'facts')), codeOf(await echo(2, 'facts'))]).toEqual(['ok', 'ok', 'ok']);
    expect(codeOf(await echo(3, 'facts'))).toBe('GH_ERR_POLICY_DENIED'); // session.calls is 3, counted by both replicas
    expect(codeOf(await echo(3, 'other'))).toBe('ok');
  });

  it('breaks a loop at exactly its limit when 20 identical calls race over both replicas', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call(i, 'loop', 'fx__echo', { text: 'again' })));
    expect(tally(results)).toEqual({ ok: 3, GH_ERR_REPEATED_CALL: 17 });
  });

  it('trips a calls budget at exactly its limit when 20 calls race over both replicas', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call(i, 'budget', 'fx__meta')));
    expect(tally(results)).toEqual({ ok: 5, GH_ERR_BUDGET_EXHAUSTED: 15 });
  });

  it('counts a per-principal budget over both replicas and every session', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call(i, `writer-${i}`, 'fx__write', { key: `k${i}`, value: 'v' })));
    expect(tally(results)).toEqual({ ok: 2, GH_ERR_BUDGET_EXHAUSTED: 18 });
    expect(existsSync(writes) ? readFileSync(writes, 'utf8').split('\n').filter(Boolean).length : 0).toBe(2);
  });
});
