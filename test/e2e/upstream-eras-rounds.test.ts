// The review of issue 16's relayed input rounds: every round of a call whose 2026-07-28 upstream asks for input is
// decided again, recorded (and the record written) before it reaches the upstream, whatever the client's era; and an
// upstream that dies in a later round leaves the call in doubt, since the rounds before it ran.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { auditOf, connectHttp, ROOT, startHarness, waitFor, type Era, type Harness } from '../helpers/gateway-harness.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';

const ERA_SERVER = join(ROOT, 'test/fixtures/era-server.ts');

type Result = { isError?: boolean; content: { text: string }[]; _meta?: Record<string, unknown> };
const codeOf = (r: Result) => (r._meta?.['gatehouse/error'] as { code?: string } | undefined)?.code;
const jobOf = (r: Result) => (r._meta?.['gatehouse/job'] as { jobId: string }).jobId;
const ALLOW = ['version: 2', 'default: allow', 'rules: []', ''].join('\n');
const DENY_TWO_ROUNDS = ['version: 2', 'default: allow', 'rules:', '  - { id: no-more-rounds, match: { tools: [v2a__two_rounds, v2b__two_rounds] }, effect: deny, reason: changed its mind }', ''].join('\n');

let h: Harness;
let dir: string;
let policy: string;
let calls: string;
const clients: Client[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'era-rounds-'));
  calls = join(dir, 'calls.jsonl');
  policy = join(dir, 'policy.yaml');
  writeFileSync(policy, ALLOW);
  const upstream = { command: process.execPath, args: ['--import', 'tsx', ERA_SERVER], env: { ERA_SERVER_LOG: calls }, cwd: ROOT, timeout: 60_000 };
  // One upstream per client era: the crash test kills each once.
  h = await startHarness({ policies: [policy], upstreams: { v2a: upstream, v2b: upstream } });
  await waitFor(() => ['v2a__crash_on_retry', 'v2b__crash_on_retry'].every((name) => h.gateway.catalog.resolve(name)), 'the modern upstreams to list their tools');
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await h?.close();
});

async function connect(era: Era): Promise<Client> {
  const client = await connectHttp(h.url, era, { elicitation: { form: {} } });
  clients.push(client);
  return client;
}

/** Answers every elicitation from `answers`; `onAsk` runs first, with the question. */
function answering(client: Client, answers: Record<string, string>, onAsk: (message: string) => void = () => undefined): void {
  client.setRequestHandler('elicitation/create' as never, (async (request: { params: { message: string; requestedSchema?: { properties?: Record<string, unknown> } } }) => {
    onAsk(request.params.message);
    const keys = Object.keys(request.params.requestedSchema?.properties ?? {});
    return { action: 'accept', content: Object.fromEntries(keys.map((k) => [k, answers[k]])) };
  }) as never);
}

const served = (tool: string): number => (existsSync(calls) ? readFileSync(calls, 'utf8') : '').split('\n').filter((l) => l && JSON.parse(l).tool === tool).length;
const recordsOf = async (jobId: string): Promise<AuditRecord[]> => (await auditOf(h.dataDir, 'default')).filter((r) => r.jobId === jobId);
const roundOf = (r: AuditRecord) => (r.data as { round?: number }).round;

const upstreamOf: Record<Era, string> = { legacy: 'v2a', modern: 'v2b' };

for (const era of ['legacy', 'modern'] as Era[]) {
  describe(`a ${era} client whose upstream asks for input round after round`, () => {
    it('has each round decided again: a policy that now denies the tool stops the next round before it reaches the upstream', async () => {
      const client = await connect(era);
      answering(client, { name: 'ada', colour: 'green' }, (message) => {
        // The client is answering the last round's question when the operator denies the tool.
        if (message !== 'Your colour?') return;
        writeFileSync(policy, DENY_TWO_ROUNDS);
        h.gateway.reloadPolicy('test');
      });
      const before = served('two_rounds');
      try {
        const result = (await client.callTool({ name: `${upstreamOf[era]}__two_rounds`, arguments: {} })) as Result;
        expect(codeOf(result)).toBe('GH_ERR_POLICY_DENIED');
        // Round 0 asked for the name, round 1 for the colour; round 2, under the new policy, never went out.
        expect(served('two_rounds') - before).toBe(2);
        const records = async () => recordsOf(jobOf(result));
        await waitFor(async () => (await records()).some((r) => r.type === 'job.denied'), 'the denial to be recorded');
        expect((await records()).filter((r) => r.type === 'job.decided')).toHaveLength(3);
      } finally {
        writeFileSync(policy, ALLOW);
        h.gateway.reloadPolicy('test');
      }
    });

    it('records each round, under the one job, before the next round is dispatched', async () => {
      const client = await connect(era);
      answering(client, { name: 'bo', colour: 'red' });
      const result = (await client.callTool({ name: `${upstreamOf[era]}__two_rounds`, arguments: {} })) as Result;
      expect(result.content[0].text).toBe('two_rounds:bo:red');
      const jobId = jobOf(result);
      await waitFor(async () => (await recordsOf(jobId)).filter((r) => r.type === 'job.succeeded').length === 3, 'the three rounds to be recorded');
      const records = await recordsOf(jobId);
      const types = records.map((r) => r.type);
      expect(records.filter((r) => r.type === 'job.submitted').map(roundOf)).toEqual([undefined, 1, 2]);
      expect(records.filter((r) => r.type === 'job.decided')).toHaveLength(3);
      const asked = records.filter((r) => r.type === 'job.input_required');
      expect(asked.map((r) => r.data)).toEqual([expect.objectContaining({ round: 1, methods: ['elicitation/create'] }), expect.objectContaining({ round: 2, methods: ['elicitation/create'] })]);
      // Round k's record comes before round k's dispatch, which waits for it to be written (the dispatch barrier).
      const dispatched = types.flatMap((t, i) => (t === 'job.dispatched' ? [i] : []));
      expect(dispatched).toHaveLength(3);
      for (const round of [1, 2]) expect(records.indexOf(asked[round - 1])).toBeLessThan(dispatched[round]);
    });

    it('ends GH_ERR_EXECUTION_IN_DOUBT when the upstream dies in a later round: the rounds before it ran', async () => {
      const client = await connect(era);
      answering(client, { go: 'yes' });
      const result = (await client.callTool({ name: `${upstreamOf[era]}__crash_on_retry`, arguments: {} })) as Result;
      expect(result.isError).toBe(true);
      expect(codeOf(result)).toBe('GH_ERR_EXECUTION_IN_DOUBT');
      const failed = async () => (await recordsOf(jobOf(result))).filter((r) => r.type === 'job.failed');
      await waitFor(async () => (await failed()).length > 0, 'the failed round to be recorded');
      expect((await failed()).at(-1)?.data).toMatchObject({ errorCode: 'GH_ERR_EXECUTION_IN_DOUBT' });
    });
  });
}
