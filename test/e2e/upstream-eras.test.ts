// Item 1 of issue 16: each upstream is spoken to in the revision it offers (server/discover first, initialize as the
// fallback), and clients of either era call tools of upstreams of either era.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, FIXTURE_UPSTREAM, ROOT, startHarness, waitFor, type Era, type Harness } from '../helpers/gateway-harness.ts';
import { startEraServer } from '../fixtures/era-server.ts';

const ERA_SERVER = join(ROOT, 'test/fixtures/era-server.ts');
const text = (r: { content: unknown }) => (r.content as { text: string }[])[0].text;

let h: Harness;
let remote: Awaited<ReturnType<typeof startEraServer>>;
let calls: string;

beforeAll(async () => {
  calls = join(mkdtempSync(join(tmpdir(), 'era-calls-')), 'calls.jsonl');
  process.env.ERA_SERVER_LOG = calls; // the HTTP server runs in this process
  remote = await startEraServer();
  h = await startHarness({
    upstreams: {
      fx: { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: {}, cwd: ROOT, timeout: 60_000 },
      v2s: { command: process.execPath, args: ['--import', 'tsx', ERA_SERVER], env: { ERA_SERVER_LOG: calls }, cwd: ROOT, timeout: 60_000 },
      v2h: { url: remote.url, headers: {}, timeout: 60_000 },
    },
  });
  await waitFor(() => ['v2s__confirm', 'v2h__confirm'].every((name) => h.gateway.catalog.resolve(name)), 'the modern upstreams to list their tools');
});
afterAll(async () => {
  await h?.close();
  await remote?.close();
});

const served = (): { era: string; tool: string; state: boolean }[] => (existsSync(calls) ? readFileSync(calls, 'utf8') : '').split('\n').filter(Boolean).map((l) => JSON.parse(l));

describe('era negotiation per upstream', () => {
  it('speaks 2026-07-28 to the upstreams that offer it (stdio and HTTP), and 2025 to the others', () => {
    expect(h.gateway.directory.get('v2s')?.era).toBe('modern');
    expect(h.gateway.directory.get('v2h')?.era).toBe('modern');
    expect(h.gateway.directory.get('fx')?.era).toBe('legacy');
    expect(h.gateway.directory.get('v2h')?.serverInfo).toEqual({ name: 'era-fixture', version: '1.0.0' });
  });

  for (const era of ['legacy', 'modern'] as Era[]) {
    it(`lists the tools of both kinds of upstream to a ${era} client, a modern upstream's MRTR tools included`, async () => {
      const client = await connectHttp(h.url, era);
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toEqual(expect.arrayContaining(['fx__echo', 'v2s__echo', 'v2s__confirm', 'v2s__two_rounds', 'v2h__echo', 'v2h__confirm']));
      await client.close();
    });

    it(`lets a ${era} client call tools of both kinds of upstream, served in each upstream's own era`, async () => {
      const client: Client = await connectHttp(h.url, era);
      const before = served().length;
      for (const name of ['fx__echo', 'v2s__echo', 'v2h__echo']) {
        expect(text(await client.callTool({ name, arguments: { text: era } }))).toBe(name === 'fx__echo' ? `echo: ${era}` : `echo:${era}`);
      }
      // A modern upstream's result reaches the client without the upstream's own revision fields.
      const result = await client.callTool({ name: 'v2h__echo', arguments: { text: 'x' } });
      expect((result._meta as Record<string, unknown> | undefined)?.['io.modelcontextprotocol/serverInfo']).not.toEqual({ name: 'era-fixture', version: '1.0.0' });
      expect(served().slice(before).filter((c) => c.tool === 'echo').map((c) => c.era)).toEqual(['modern', 'modern', 'modern']);
      await client.close();
    });
  }

  it("a 2025 upstream's request during a call cannot reach a 2026-07-28 client: the upstream is told so at once, and the call ends (no hang)", async () => {
    const client = await connectHttp(h.url, 'modern', { elicitation: { form: {} } });
    let asked = 0;
    client.setRequestHandler('elicitation/create' as never, (async () => {
      asked++;
      return { action: 'accept', content: { answer: '42' } };
    }) as never);
    const result = await client.callTool({ name: 'fx__ask', arguments: {} });
    expect(result.isError).toBe(true);
    expect(asked).toBe(0);
    await client.close();
  });
});
