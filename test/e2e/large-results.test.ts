// Large results (issue 10, item 13), end to end: a real gateway over HTTP with two real stdio upstreams and a bare
// HTTP one. A result over the upstream message limit (limits.maxUpstreamMessageBytes; small here, so the "70 MB"
// case is 2 MB), as a stdio line, an HTTP body or an SSE event, fails its call at once with a code and an error log line,
// instead of vanishing until the timeout (or, over HTTP, filling memory); and while one upstream's large answer is
// in flight, another upstream's call completes.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/config/load.ts';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, FIXTURE_UPSTREAM, ROOT, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { recordingLogger } from '../helpers/capturing-log.ts';

const STALLED_SERVER = join(ROOT, 'test/fixtures/stalled-result-server.ts');
const MAX_MESSAGE_BYTES = 64 * 1024;
/** Set apart from the client limit (it would be 16 × MAX_MESSAGE_BYTES, 1 MiB, unset). */
const MAX_UPSTREAM_MESSAGE_BYTES = 1_000_000;

let h: Harness;
let client: Client;
let dir: string;
let web: Server;
const log = recordingLogger();

/**
 * A bare Streamable HTTP upstream (raw JSON-RPC, so the test owns every byte): `big` answers `bytes` of text as
 * one JSON body, or, with `sse: true`, as one server-sent event.
 */
function startWebUpstream(): Promise<string> {
  web = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      if (req.method !== 'POST') return void res.writeHead(405).end();
      const message = JSON.parse(body) as { id?: number; method: string; params?: { protocolVersion?: string; arguments?: { bytes: number; sse?: boolean } } };
      if (message.id === undefined) return void res.writeHead(202).end();
      const answer = (result: unknown, sse = false) => {
        const text = JSON.stringify({ jsonrpc: '2.0', id: message.id, result });
        if (!sse) return void res.writeHead(200, { 'content-type': 'application/json' }).end(text);
        res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`id: 1\ndata: ${text}\n\n`);
      };
      if (message.method === 'initialize') return answer({ protocolVersion: message.params?.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'web', version: '1' } });
      if (message.method === 'tools/list') return answer({ tools: [{ name: 'big', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true } }] });
      const { bytes, sse } = message.params?.arguments ?? { bytes: 0 };
      answer({ content: [{ type: 'text', text: 'x'.repeat(bytes) }] }, sse);
    });
  });
  return new Promise((resolve) => web.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(web.address() as AddressInfo).port}/mcp`)));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-large-'));
  const webUrl = await startWebUpstream();
  h = await startHarness(
    {
      limits: { ...defaultConfig().limits, maxMessageBytes: MAX_MESSAGE_BYTES, maxUpstreamMessageBytes: MAX_UPSTREAM_MESSAGE_BYTES, maxAuditBacklog: 100_000 },
      upstreams: {
        // A timeout longer than the test's: a call that waited for it would fail the test, not pass it.
        fx: { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: {}, cwd: ROOT, timeout: 600_000 },
        stall: {
          command: process.execPath,
          args: ['--import', 'tsx', STALLED_SERVER],
          env: { HALF_FILE: join(dir, 'half'), RELEASE_FILE: join(dir, 'release') },
          cwd: ROOT,
          timeout: 600_000,
        },
        web: { url: webUrl, headers: {}, timeout: 600_000 },
      },
    },
    { log },
  );
  await waitFor(() => h.gateway.catalog.entries().some((e) => e.name === 'stall__big'), 'the stalled upstream to be listed');
  client = await connectHttp(h.url);
}, 60_000);
afterAll(async () => {
  await client?.close();
  await h?.close();
  web?.close();
});

const codeOf = (result: Awaited<ReturnType<Client['callTool']>>) => (result._meta as Record<string, { code?: string }> | undefined)?.['gatehouse/error']?.code;
const textOf = (result: Awaited<ReturnType<Client['callTool']>>) => (result.content as { text: string }[])[0].text;

describe('maxOutputBytes', () => {
  it('passes a result exactly at the limit whole, and cuts one a byte over', async () => {
    const { mergePolicySources, parsePolicy } = await import('../../src/kernel/bundle.ts');
    const { parseYamlText } = await import('../../src/config/yaml-file.ts');
    const policy = 'version: 1\ndefault: allow\nrules:\n  - { id: cap, effect: allow_with_constraints, constraints: { maxOutputBytes: 2000 } }\n';
    const before = h.gateway.kernel.bundle;
    h.gateway.kernel.replace(mergePolicySources([parsePolicy(parseYamlText('p.yaml', policy, 'GH_ERR_POLICY_INVALID'))]));
    try {
      const at = await client.callTool({ name: 'fx__big', arguments: { bytes: 2000 } });
      expect(textOf(at)).toBe('x'.repeat(2000));
      expect((at._meta as Record<string, { truncated?: boolean }>)['gatehouse/job'].truncated).toBeUndefined();
      const over = await client.callTool({ name: 'fx__big', arguments: { bytes: 2001 } });
      expect(textOf(over)).toContain('output truncated by policy at 2000 bytes; the full result was 2001 bytes');
      expect(Buffer.byteLength(textOf(over))).toBeLessThanOrEqual(2000);
      expect((over._meta as Record<string, { truncated?: boolean }>)['gatehouse/job'].truncated).toBe(true);
    } finally {
      h.gateway.kernel.replace(before);
    }
  }, 60_000);
});

describe('large results', () => {
  it('fails a result over the upstream line limit at once, with GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE logged at error', async () => {
    const result = await client.callTool({ name: 'fx__big', arguments: { bytes: 2_000_000 } });
    expect(result.isError).toBe(true);
    expect(codeOf(result)).toBe('GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE');
    expect(log.lines).toContainEqual(expect.objectContaining({ level: 'error', fields: expect.objectContaining({ upstream: 'fx', limit: MAX_UPSTREAM_MESSAGE_BYTES }) }));
    // The upstream is healthy and keeps serving; a result under the limit passes whole.
    const small = await client.callTool({ name: 'fx__big', arguments: { bytes: 500_000 } });
    expect(textOf(small)).toHaveLength(500_000);
  }, 60_000);

  it('bounds an HTTP upstream too: a JSON body or an SSE event over the limit fails its call at once, coded and logged', async () => {
    await waitFor(() => h.gateway.catalog.entries().some((e) => e.name === 'web__big'), 'the HTTP upstream to be listed');
    for (const sse of [false, true]) {
      const result = await client.callTool({ name: 'web__big', arguments: { bytes: 2_000_000, sse } });
      expect(codeOf(result), `sse: ${sse}`).toBe('GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE');
      const small = await client.callTool({ name: 'web__big', arguments: { bytes: 500_000, sse } });
      expect(textOf(small), `sse: ${sse}`).toHaveLength(500_000);
    }
    expect(log.lines).toContainEqual(expect.objectContaining({ level: 'error', fields: expect.objectContaining({ upstream: 'web', limit: MAX_UPSTREAM_MESSAGE_BYTES }) }));
  }, 60_000);

  it("completes another upstream's call while a large answer is in flight", async () => {
    let largeDone = false;
    const large = client.callTool({ name: 'stall__big', arguments: { bytes: 900_000 } }).then((r) => {
      largeDone = true;
      return r;
    });
    // The large answer is half on the wire: its upstream wrote 900 kB of the line and holds the rest.
    await waitFor(() => existsSync(join(dir, 'half')), 'the large answer to be half written');
    const other = await client.callTool({ name: 'fx__echo', arguments: { text: 'meanwhile' } });
    expect(textOf(other)).toBe('echo: meanwhile');
    expect(largeDone).toBe(false);
    writeFileSync(join(dir, 'release'), 'go');
    const result = await large;
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toHaveLength(900_000);
  }, 60_000);
});
