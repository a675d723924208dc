// Session-aware rules end to end, embedded mode: a real gateway over HTTP in front of the real stdio fixture,
// official SDK clients (each a 2025 session of its own, or 2026-07-28 clients keyed as the README says). The loop
// breaker and every budget trip exactly at their limits, also under 20 concurrent calls; session facts reach the
// rules, the audit records them with the decision, `policy replay` decides with them, and they survive a restart.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { connectHttp, startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import { replayDecisions } from '../../src/kernel/authoring/replay.ts';
import { SESSION_POLICY } from '../helpers/session-policy.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';


type Result = Awaited<ReturnType<Client['callTool']>>;
const errorOf = (r: Result) => (r._meta as Record<string, any> | undefined)?.['gatehouse/error'] as { code: string; ruleId?: string; left?: Record<string, number>; per?: string } | undefined;
const codeOf = (r: Result) => errorOf(r)?.code ?? 'ok';

let h: Harness;
const clients: Client[] = [];

async function client(name?: string): Promise<Client> {
  if (!name) {
    const c = await connectHttp(h.url);
    clients.push(c);
    return c;
  }
  const c = new Client({ name, version: '7.1' }, { capabilities: {} });
  await c.connect(new StreamableHTTPClientTransport(new URL(h.url)));
  clients.push(c);
  return c;
}

const tally = (results: Result[]) => results.reduce<Record<string, number>>((n, r) => ((n[codeOf(r)] = (n[codeOf(r)] ?? 0) + 1), n), {});

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-session-rules-'));
  writeFileSync(join(dir, 'policy.yaml'), SESSION_POLICY);
  h = await startHarness({ policies: [join(dir, 'policy.yaml')] });
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await h?.close();
});

describe('the loop breaker', () => {
  it('refuses the same tool with the same arguments past the limit, with a result the model reads; other arguments still run', async () => {
    const c = await client();
    const echo = (text: string) => c.callTool({ name: 'fx__echo', arguments: { text } });
    for (let i = 0; i < 3; i++) expect(codeOf(await echo('same'))).toBe('ok');
    const refused = await echo('same');
    expect(refused.isError).toBe(true);
    expect(errorOf(refused)).toMatchObject({ code: 'GH_ERR_REPEATED_CALL', ruleId: 'loop' });
    expect(codeOf(await echo('different'))).toBe('ok');
  });

  it('lets exactly limit calls through when 20 race', async () => {
    const c = await client();
    const results = await Promise.all(Array.from({ length: 20 }, () => c.callTool({ name: 'fx__echo', arguments: { text: 'race' } })));
    expect(tally(results)).toEqual({ ok: 3, GH_ERR_REPEATED_CALL: 17 });
  });

  it('counts per session: another session starts afresh', async () => {
    const c = await client();
    expect(codeOf(await c.callTool({ name: 'fx__echo', arguments: { text: 'same' } }))).toBe('ok');
  });
});

describe('budgets', () => {
  it('trip a calls budget exactly at its limit under 20 concurrent calls, and say what is left', async () => {
    const c = await client();
    const results = await Promise.all(Array.from({ length: 20 }, () => c.callTool({ name: 'fx__meta', arguments: {} })));
    expect(tally(results)).toEqual({ ok: 5, GH_ERR_BUDGET_EXHAUSTED: 15 });
    expect(errorOf(results.find((r) => r.isError)!)).toEqual({ code: 'GH_ERR_BUDGET_EXHAUSTED', ruleId: 'meta-calls', per: 'session', left: { calls: 0 } });
  });

  it('count output bytes when the result comes back, and refuse the next call once they are used up', async () => {
    const c = await client();
    const big = () => c.callTool({ name: 'fx__big', arguments: { bytes: 600 } });
    expect(codeOf(await big())).toBe('ok'); // 600 of 1000 used
    expect(codeOf(await big())).toBe('ok'); // admitted with 400 left; 1200 used once it came back
    const refused = await big();
    expect(errorOf(refused)).toEqual({ code: 'GH_ERR_BUDGET_EXHAUSTED', ruleId: 'big-bytes', per: 'session', left: { outputBytes: 0 } });
  });

  it('count upstream time when the result comes back, and refuse the next call once it is used up', async () => {
    const c = await client();
    const slow = () => c.callTool({ name: 'fx__slow', arguments: { steps: 1, delayMs: 5 } });
    expect(codeOf(await slow())).toBe('ok'); // the fixture takes over 20 ms: more than the 1 ms budget
    expect(errorOf(await slow())).toMatchObject({ code: 'GH_ERR_BUDGET_EXHAUSTED', ruleId: 'slow-time', left: { upstreamTimeMs: 0 } });
  });

  it('count a per-principal budget over the day: re-running initialize (a new session) does not reset it', async () => {
    const first = await client();
    const write = (c: Client, key: string) => c.callTool({ name: 'fx__write', arguments: { key, value: 'v' } });
    expect(codeOf(await write(first, 'k1'))).toBe('ok');
    expect(codeOf(await write(first, 'k2'))).toBe('ok');
    expect(errorOf(await write(first, 'k3'))).toEqual({ code: 'GH_ERR_BUDGET_EXHAUSTED', ruleId: 'daily-writes', per: 'principal', left: { calls: 0 } });
    const again = await client();
    expect(errorOf(await write(again, 'k4'))).toMatchObject({ code: 'GH_ERR_BUDGET_EXHAUSTED', ruleId: 'daily-writes' });
    expect(h.writes()).toBe(2);
  });

  it('trip a distinct-tools budget at its limit under concurrent calls: two tools run, the third never does', async () => {
    const c = await client('spreader');
    const tools = ['fx__echo', 'fx__big', 'fx__meta'];
    const args = (tool: string, i: number) => (tool === 'fx__echo' ? { text: `t${i}` } : tool === 'fx__big' ? { bytes: 1 } : {});
    const calls = Array.from({ length: 21 }, (_, i) => tools[i % 3]);
    const results = await Promise.all(calls.map((tool, i) => c.callTool({ name: tool, arguments: args(tool, i) })));
    const ran = new Set(calls.filter((_, i) => !results[i].isError));
    expect(ran.size).toBe(2);
    const left = tools.find((t) => !ran.has(t))!;
    const refusals = results.filter((_, i) => calls[i] === left).map(errorOf);
    expect(refusals).toEqual(Array.from({ length: 7 }, () => ({ code: 'GH_ERR_BUDGET_EXHAUSTED', ruleId: 'spread', per: 'session', left: { distinctTools: 0 } })));
  });
});

describe('session facts in rules', () => {
  it('decides on session.calls and session.client, records them with the decision, and replays with them', async () => {
    const c = await client('counter');
    const echo = (text: string) => c.callTool({ name: 'fx__echo', arguments: { text } });
    for (const text of ['c1', 'c2', 'c3']) expect(codeOf(await echo(text))).toBe('ok');
    expect(errorOf(await echo('c4'))).toMatchObject({ code: 'GH_ERR_POLICY_DENIED' });

    await h.gateway.audit.flush();
    const records: AuditRecord[] = [];
    const store = new FileAuditStore(h.dataDir);
    for await (const r of store.read('default')) records.push(r);
    await store.close();
    const mine = records.filter((r) => r.type === 'job.decided' && (r.data.input as { session?: { client: { name: string } } }).session?.client.name === 'counter');
    expect(mine.map((r) => [(r.data.input as { session: { calls: number } }).session.calls, r.data.effect])).toEqual([
      [0, 'allow'],
      [1, 'allow'],
      [2, 'allow'],
      [3, 'deny'],
    ]);
    // `policy replay` of the same policy decides every one of them as the gateway did: it sees the same facts.
    const report = await replayDecisions(mine, h.gateway.kernel);
    expect([report.replayed, report.unchanged, report.changed]).toEqual([4, 4, 0]);
  });
});
