// Relayed input rounds in distributed mode (real NATS, real Redis): a 2026-07-28 upstream's input requests reach a
// client of either era through a distributed replica, and each round of the one job has a claim of its own, so a late
// delivery of an earlier round's job message neither runs the upstream again nor takes the next round's place.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, ROOT, TEST_DECISION_BUDGET_MS, waitFor, type Era } from '../helpers/gateway-harness.ts';
import { clusterAvailable, SIGNING_KEY, startReplicaInProcess, type Replica } from '../helpers/distributed.ts';
import { startNatsServer, type NatsServer } from '../helpers/nats-server.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { startEraServer } from '../fixtures/era-server.ts';
import { defaultConfig } from '../../src/config/load.ts';
import { decodeBusPacket } from '../../src/protocol/cap-wire.ts';
import { Subjects, type JobRequest } from '../../src/protocol/cap.ts';

const ERA_SERVER = join(ROOT, 'test/fixtures/era-server.ts');
const available = clusterAvailable();

type Raw = { isError?: boolean; content: { text: string }[]; resultType?: string; requestState?: string; _meta?: Record<string, unknown> };
const text = (r: Raw) => r.content[0].text;
const manual = (client: Client, params: Record<string, unknown>) => client.callTool(params as never, { allowInputRequired: true } as never) as Promise<Raw>;

describe.skipIf(!available)('relayed input rounds through a distributed replica (real NATS and Redis)', () => {
  let nats: NatsServer;
  let redis: RedisServer;
  let remote: Awaited<ReturnType<typeof startEraServer>>;
  let replica: Replica;
  let watcher: NatsConnection;
  let calls: string;
  /** Every job message sent for the stdio upstream's pool, as the bus carried it. */
  const sent: { job: JobRequest; bytes: Uint8Array }[] = [];
  const clients: Client[] = [];

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
    const dir = mkdtempSync(join(tmpdir(), 'era-distributed-'));
    calls = join(dir, 'calls.jsonl');
    process.env.ERA_SERVER_LOG = calls;
    remote = await startEraServer();
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, ['version: 2', 'default: allow', 'rules: []', ''].join('\n'));
    watcher = await connect({ servers: nats.url });
    // Not in the executors' queue group: a copy of every job message the replica sends its own executor.
    const sub = watcher.subscribe(Subjects.pool('v2s'));
    void (async () => {
      for await (const m of sub) {
        const packet = decodeBusPacket(m.data);
        if (packet.payload.kind === 'jobRequest') sent.push({ job: packet.payload.jobRequest, bytes: m.data });
      }
    })();
    replica = await startReplicaInProcess(
      defaultConfig({
        mode: 'distributed',
        nats: { url: nats.url, jetstream: false },
        redis: { url: redis.url },
        dataDir: mkdtempSync(join(dir, 'replica-')),
        policies: [policy],
        kernel: { decisionBudget: TEST_DECISION_BUDGET_MS, watchPolicies: false },
        approvals: { ...defaultConfig().approvals, signingKey: SIGNING_KEY },
        upstreams: {
          v2s: { command: process.execPath, args: ['--import', 'tsx', ERA_SERVER], env: { ERA_SERVER_LOG: calls }, cwd: ROOT, timeout: 60_000 },
          v2h: { url: remote.url, headers: {}, timeout: 60_000 },
        },
      }),
    );
    await waitFor(() => ['v2s__two_rounds', 'v2h__confirm'].every((name) => replica.gateway.catalog.resolve(name)), 'the modern upstreams to list their tools');
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await replica?.close();
    await watcher?.close();
    await remote?.close();
    await Promise.allSettled([nats?.stop(), redis?.stop()]);
  });

  async function client(era: Era): Promise<Client> {
    const c = await connectHttp(replica.url, era, { elicitation: { form: {} } });
    clients.push(c);
    return c;
  }

  const served = (tool: string): number => (existsSync(calls) ? readFileSync(calls, 'utf8') : '').split('\n').filter((l) => l && JSON.parse(l).tool === tool).length;

  for (const era of ['legacy', 'modern'] as Era[]) {
    it(`a ${era} client answers the upstream's input requests: one elicitation (HTTP upstream), two rounds (stdio upstream)`, async () => {
      const c = await client(era);
      const asked: string[] = [];
      const answers: Record<string, string> = { ok: 'yes', name: 'ada', colour: 'green' };
      c.setRequestHandler('elicitation/create' as never, (async (request: { params: { message: string; requestedSchema?: { properties?: Record<string, unknown> } } }) => {
        asked.push(request.params.message);
        return { action: 'accept', content: Object.fromEntries(Object.keys(request.params.requestedSchema?.properties ?? {}).map((k) => [k, answers[k]])) };
      }) as never);
      expect(text((await c.callTool({ name: 'v2h__confirm', arguments: { what: 'deploy' } })) as Raw)).toBe('confirm:deploy:accept:yes');
      expect(text((await c.callTool({ name: 'v2s__two_rounds', arguments: {} })) as Raw)).toBe('two_rounds:ada:green');
      expect(asked).toEqual(['Confirm deploy?', 'Your name?', 'Your colour?']);
    });
  }

  it("a late delivery of an earlier round's job message runs nothing, and the next round still runs", async () => {
    const c = await client('modern');
    const call = { name: 'v2s__two_rounds', arguments: {} };
    const before = served('two_rounds');
    const first = await manual(c, call);
    expect(first.resultType).toBe('input_required');
    const jobId = (first._meta?.['gatehouse/job'] as { jobId: string }).jobId;
    const roundOf = (round: number) => sent.find((s) => s.job.jobId === jobId && (s.job.stepIndex ?? 0) === round);
    await waitFor(() => roundOf(0) !== undefined, 'round 0 to be seen on the bus');
    // Round 0 delivered again between the rounds, before the client retries.
    watcher.publish(Subjects.pool('v2s'), roundOf(0)!.bytes);
    await watcher.flush();
    const second = await manual(c, { ...call, inputResponses: { name: { action: 'accept', content: { name: 'bo' } } }, requestState: first.requestState });
    expect(second.resultType).toBe('input_required');
    expect(roundOf(1)).toBeDefined();
    // Both earlier rounds delivered again before the last one.
    for (const round of [0, 1]) watcher.publish(Subjects.pool('v2s'), roundOf(round)!.bytes);
    await watcher.flush();
    const done = await manual(c, { ...call, inputResponses: { colour: { action: 'accept', content: { colour: 'red' } } }, requestState: second.requestState });
    expect(done.isError).toBeFalsy();
    expect(text(done)).toBe('two_rounds:bo:red');
    // Three rounds, each run once: the late deliveries reached no upstream.
    expect(served('two_rounds') - before).toBe(3);
  });
});
