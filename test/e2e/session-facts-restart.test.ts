// Session facts in embedded mode across a restart, and the keying of 2026-07-28 clients, which keep no session:
// by `_meta["gatehouse/session"]` when they send one, else by principal and `sessions.window`. A real gateway on
// one data dir, stopped and started again, official SDK clients pinned to 2026-07-28.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, startHarness, type Harness } from '../helpers/gateway-harness.ts';

const POLICY = `
version: 2
default: allow
rules:
  - id: two-per-session
    match: { tools: ["fx__echo"] }
    when: 'session.calls >= 2'
    effect: deny
    reason: two calls per session
`;

const dir = mkdtempSync(join(tmpdir(), 'gh-session-restart-'));
writeFileSync(join(dir, 'policy.yaml'), POLICY);
const dataDir = join(dir, 'data');
const opened: Client[] = [];
let h: Harness | undefined;

// A window far longer than the test, so that no window boundary falls between two calls.
const start = async () => (h = await startHarness({ policies: [join(dir, 'policy.yaml')], dataDir, sessions: { idle: 30 * 60_000, window: 100_000 * 3_600_000 } }));
const modern = async () => {
  const c = await connectHttp(h!.url, 'modern');
  opened.push(c);
  return c;
};
const echo = async (c: Client, session?: string) => {
  const r = await c.callTool({ name: 'fx__echo', arguments: { text: 'x' }, ...(session ? { _meta: { 'gatehouse/session': session } } : {}) });
  return ((r._meta as Record<string, any> | undefined)?.['gatehouse/error']?.code as string | undefined) ?? 'ok';
};

afterAll(async () => {
  await Promise.allSettled(opened.map((c) => c.close()));
  await h?.close();
});

describe('2026-07-28 sessions, and a restart', () => {
  it('keys by _meta["gatehouse/session"], else by principal: two clients without one share a session', async () => {
    await start();
    const [a, b] = [await modern(), await modern()];
    expect([await echo(a, 'conv-1'), await echo(b, 'conv-1'), await echo(a, 'conv-1')]).toEqual(['ok', 'ok', 'GH_ERR_POLICY_DENIED']);
    expect(await echo(a, 'conv-2')).toBe('ok');
    expect([await echo(a), await echo(b), await echo(a)]).toEqual(['ok', 'ok', 'GH_ERR_POLICY_DENIED']);
  });

  it('keeps the session facts across a gateway restart on the same data dir', async () => {
    await h!.close();
    h = undefined;
    await start();
    const c = await modern();
    expect(await echo(c, 'conv-1')).toBe('GH_ERR_POLICY_DENIED');
    expect([await echo(c, 'conv-2'), await echo(c, 'conv-2')]).toEqual(['ok', 'GH_ERR_POLICY_DENIED']);
    expect(await echo(c, 'conv-3')).toBe('ok');
  });
});
