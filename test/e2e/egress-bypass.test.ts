// Egress through a URL parser difference (issue 10, item 12), end to end: a real gateway over HTTP, a real stdio
// upstream whose `fetch` tool reads URLs as curl and Python's urlsplit do, and a real HTTP listener on 127.0.0.1
// that the policy does not allow. `http://api.example.com\@127.0.0.1:<port>/x` is api.example.com to a browser and
// 127.0.0.1 to the tool: Gatehouse must refuse it, and the listener must never see it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, ROOT, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';

const FETCH_SERVER = join(ROOT, 'test/fixtures/fetch-server.ts');
const POLICY = `
version: 2
default: deny
rules:
  - id: fetch-api
    match: { tools: ["fx__fetch"] }
    effect: allow_with_constraints
    constraints:
      egress: { args: [url], allowHosts: ["api.example.com"] }
  - id: probe-local
    match: { tools: ["fx__probe"] }
    effect: allow_with_constraints
    constraints:
      egress: { args: [url], allowHosts: ["127.0.0.1"] }
`;

let h: Harness;
let client: Client;
let listener: Server;
let port: number;
const received: string[] = [];

beforeAll(async () => {
  listener = createServer((req, res) => {
    received.push(req.url ?? '');
    res.end('reached');
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  port = (listener.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), 'gh-egress-'));
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, POLICY);
  h = await startHarness({
    policies: [policy],
    upstreams: { fx: { command: process.execPath, args: ['--import', 'tsx', FETCH_SERVER], env: {}, cwd: ROOT, timeout: 60_000 } },
  });
  client = await connectHttp(h.url);
});
afterAll(async () => {
  await client?.close();
  await h?.close();
  await new Promise((resolve) => listener?.close(resolve));
});

describe('egress through a URL parser difference', () => {
  it('refuses URLs the tool would read as the listener, which never receives them', async () => {
    const bypasses = [
      `http://api.example.com\\@127.0.0.1:${port}/backslash`,
      `http://api.example.com\\\\@127.0.0.1:${port}/two-backslashes`,
      `http://api.example.com\\@127.0.0.1:${port}?@api.example.com/query`,
    ];
    for (const url of bypasses) {
      const result = await client.callTool({ name: 'fx__fetch', arguments: { url } });
      expect(result.isError, url).toBe(true);
      expect((result._meta as Record<string, { code?: string; ruleId?: string }>)['gatehouse/error']).toMatchObject({ code: 'GH_ERR_EGRESS_DENIED', ruleId: 'fetch-api' });
    }
    // The positive signal: an allowed call to the listener, made after the refused ones, arrives.
    const probe = await client.callTool({ name: 'fx__probe', arguments: { url: `http://127.0.0.1:${port}/after` } });
    expect((probe.content as { text: string }[])[0].text).toBe('200 reached');
    await waitFor(() => received.includes('/after'), 'the allowed probe to reach the listener');
    expect(received).toEqual(['/after']);
  });
});
