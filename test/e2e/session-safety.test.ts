// The trifecta, end to end in embedded mode with the bundled policies/session-safety.yaml: a real gateway, the
// fixture upstream, official SDK clients. Reading private data, then fetching a page with an injected instruction,
// puts the next call that can reach the outside world before a human (and the approval says which calls set the
// labels); the same call in a clean session runs; the labels survive a gateway restart on the same data dir.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { INJECTED, SAFETY_BASE_POLICY, SESSION_SAFETY } from '../helpers/session-safety-policy.ts';

const dir = mkdtempSync(join(tmpdir(), 'gh-session-safety-'));
writeFileSync(join(dir, 'base.yaml'), SAFETY_BASE_POLICY);
const dataDir = join(dir, 'data');
const opened: Client[] = [];
let h: Harness | undefined;

type Result = Awaited<ReturnType<Client['callTool']>>;
const codeOf = (r: Result) => ((r._meta as Record<string, any> | undefined)?.['gatehouse/error']?.code as string | undefined) ?? 'ok';
const textOf = (r: Result) => (r.content as { type: string; text?: string }[]).map((c) => c.text ?? '').join('\n');
const start = async () => (h = await startHarness({ policies: [join(dir, 'base.yaml'), SESSION_SAFETY], dataDir, sessions: { idle: 30 * 60_000, window: 100_000 * 3_600_000 } }));
const client = async () => {
  const c = await connectHttp(h!.url, 'modern');
  opened.push(c);
  return c;
};
const call = (c: Client, session: string, name: string, args: Record<string, unknown>) => c.callTool({ name, arguments: args, _meta: { 'gatehouse/session': session } });

afterAll(async () => {
  await Promise.allSettled(opened.map((c) => c.close()));
  await h?.close();
});

describe('the trifecta (embedded)', () => {
  it('holds the egress call for approval after private data and an injected page, and says why', async () => {
    await start();
    const c = await client();
    expect(codeOf(await call(c, 'tainted', 'fx__meta', {}))).toBe('ok');
    const fetched = await call(c, 'tainted', 'fx__echo', { text: INJECTED });
    expect(codeOf(fetched)).toBe('ok');
    // The scanner (warn) marked the injected text for the model, and told it what it found.
    expect(textOf(fetched)).toContain('Gatehouse scanned this tool result');
    expect(textOf(fetched)).toMatch(/\[Gatehouse warning, [^\]]*model-instructions[^\]]*\]/);
    const writesBefore = h!.writes();
    const egress = await call(c, 'tainted', 'fx__write', { key: 'k', value: 'the notes' });
    expect(codeOf(egress)).toBe('GH_ERR_APPROVAL_PENDING');
    expect(h!.writes()).toBe(writesBefore);
    const [approval] = await h!.gateway.approvals.list('pending');
    expect(approval.ruleIds).toContain('session-safety/trifecta-egress');
    expect(approval.reason).toMatch(/private-data set by job \w+ \(rule session-safety\/private-data\)/);
    expect(approval.reason).toMatch(/untrusted-input set by job \w+ \(the result scanner\)/);
    expect(approval.reason).toMatch(/untrusted-input set by job \w+ \(rule session-safety\/untrusted-content\)/);
    // A read-only tool that can reach the outside world (no openWorldHint: false) is held by the trifecta rule alone.
    const open = await call(c, 'tainted', 'fx__big', { bytes: 10 });
    expect(codeOf(open)).toBe('GH_ERR_APPROVAL_PENDING');
    expect((open._meta as Record<string, any>)['gatehouse/job'].ruleIds).toEqual(['session-safety/trifecta-egress']);
  });

  it('runs the same egress call in a clean session', async () => {
    const c = await client();
    const writesBefore = h!.writes();
    expect(codeOf(await call(c, 'clean', 'fx__write', { key: 'k', value: 'the notes' }))).toBe('ok');
    expect(h!.writes()).toBe(writesBefore + 1);
  });

  it('runs it after private data alone, and after untrusted content alone', async () => {
    const c = await client();
    await call(c, 'private-only', 'fx__meta', {});
    expect(codeOf(await call(c, 'private-only', 'fx__write', { key: 'k', value: 'v' }))).toBe('ok');
    await call(c, 'untrusted-only', 'fx__echo', { text: 'An ordinary page about gardening.' });
    expect(codeOf(await call(c, 'untrusted-only', 'fx__write', { key: 'k', value: 'v' }))).toBe('ok');
  });

  it('puts a destructive tool before a human once a result looked like an injection, private data or not', async () => {
    const c = await client();
    await call(c, 'injected-only', 'fx__echo', { text: INJECTED });
    const held = await call(c, 'injected-only', 'fx__write', { key: 'k', value: 'v' });
    expect(codeOf(held)).toBe('GH_ERR_APPROVAL_PENDING');
    const pending = await h!.gateway.approvals.list('pending');
    expect(pending.some((a) => a.ruleIds.includes('session-safety/injection-destructive') && /injection-suspected set by job \w+ \(the result scanner\)/.test(a.reason))).toBe(true);
    expect(codeOf(await call(c, 'injected-only', 'fx__big', { bytes: 10 }))).toBe('ok');
  });

  it('keeps the labels across a gateway restart on the same data dir', async () => {
    await h!.close();
    h = undefined;
    await start();
    const c = await client();
    expect(codeOf(await call(c, 'tainted', 'fx__write', { key: 'k2', value: 'the notes' }))).toBe('GH_ERR_APPROVAL_PENDING');
    expect(codeOf(await call(c, 'clean-after-restart', 'fx__write', { key: 'k2', value: 'the notes' }))).toBe('ok');
  });
});
