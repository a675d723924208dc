// Session-aware rules in distributed mode: two gateway replicas (in this process) on real NATS and Redis servers,
// official SDK clients on each. A 2026-07-28 client's session (`_meta["gatehouse/session"]`) spans replicas, as
// behind a load balancer: the facts one replica counted reach the other's rules, and the loop breaker and budgets
// trip exactly at their limits when 20 calls race over both replicas (the check and the count are one Redis script).
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { defaultConfig } from '../../src/config/load.ts';
import { connectHttp, FIXTURE_UPSTREAM, ROOT, TEST_DECISION_BUDGET_MS } from '../helpers/gateway-harness.ts';
import { SIGNING_KEY, startReplicaInProcess, type Replica } from '../helpers/distributed.ts';
import { natsServerAvailable, startNatsServer, type NatsServer } from '../helpers/nats-server.ts';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';

const available = natsServerAvailable() && redisServerAvailable();

const POLICY = `
version: 2
default: allow
rules:
  - id: loop
    match: { tools: ["fx__echo"] }
    effect: allow
    repeat: { limit: 4, window: 10m }
  - id: meta-calls
    match: { tools: ["fx__meta"] }
    effect: allow
    budget: { calls: 5 }
  - id: daily-writes
    match: { tools: ["fx__write"] }
    effect: allow
    budget: { calls: 2, per: principal }
  - id: no-big-after-meta
    match: { tools: ["fx__big"] }
    when: '"fx__meta" in session.tools'
    effect: deny
    reason: no big results in a session that read its _meta
`;

const dir = mkdtempSync(join(tmpdir(), 'gh-session-dist-'));
const writes = join(dir, 'writes.log');
let nats: NatsServer;
let redis: RedisServer;
let replicas: Replica[] = [];
let clients: Client[] = [];

type Result = Awaited<ReturnType<Client['callTool']>>;
const codeOf = (r: Result) => ((r._meta as Record<string, any> | undefined)?.['gatehouse/error']?.code as string | undefined) ?? 'ok';
const tally = (results: Result[]) => results.reduce<Record<string, number>>((n, r) => ((n[codeOf(r)] = (n[codeOf(r)] ?? 0) + 1), n), {});
/** The i-th call of a session goes to replica i % 2. */
const call = (i: number, session: string, name: string, args: Record<string, unknown> = {}) => clients[i % 2].callTool({ name, arguments: args, _meta: { 'gatehouse/session': session } });

describe.skipIf(!available)('session-aware rules over two replicas', () => {
  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    const config = () =>
      defaultConfig({
        mode: 'distributed',
        nats: { url: nats.url, jetstream: false },
        redis: { url: redis.url },
        dataDir: mkdtempSync(join(dir, 'replica-')),
        policies: [join(dir, 'policy.yaml')],
        kernel: { decisionBudget: TEST_DECISION_BUDGET_MS, watchPolicies: false },
        approvals: { ...defaultConfig().approvals, signingKey: SIGNING_KEY },
        // Run by each replica itself (no pool), so no worker is needed.
        upstreams: { fx: { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: { SIDE_EFFECTS_FILE: writes }, cwd: ROOT, timeout: 60_000 } },
      });
    replicas = await Promise.all([startReplicaInProcess(config()), startReplicaInProcess(config())]);
    clients = await Promise.all(replicas.map((r) => connectHttp(r.url, 'modern')));
  });
  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.allSettled(replicas.map((r) => r.close()));
    await Promise.allSettled([nats?.stop(), redis?.stop()]);
  });

  it('moves session facts across replicas: what one counted, the other’s rules read', async () => {
    expect(codeOf(await call(1, 'facts', 'fx__big', { bytes: 1 }))).toBe('ok');
    expect(codeOf(await call(0, 'facts', 'fx__meta'))).toBe('ok');
    expect(codeOf(await call(1, 'facts', 'fx__big', { bytes: 1 }))).toBe('GH_ERR_POLICY_DENIED');
    expect(codeOf(await call(1, 'other', 'fx__big', { bytes: 1 }))).toBe('ok');
  });

  it('breaks a loop at exactly its limit when 20 identical calls race over both replicas', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call(i, 'loop', 'fx__echo', { text: 'again' })));
    expect(tally(results)).toEqual({ ok: 4, GH_ERR_REPEATED_CALL: 16 });
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
