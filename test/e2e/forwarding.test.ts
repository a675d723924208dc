import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, connectWithStream, FIXTURE_UPSTREAM, ROOT, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { startConformanceServer } from '../fixtures/conformance-server.ts';
import { recordingHttpUpstream } from '../fixtures/recording-http-upstream.ts';
import { freePort } from '../helpers/server-process.ts';
import { mergePolicySources, parsePolicy } from '../../src/kernel/bundle.ts';
import { parseYamlText } from '../../src/config/yaml-file.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const text = (r: { content: unknown }) => (r.content as { text: string }[])[0].text;

describe('what passes through Gatehouse', () => {
  it('passes unknown _meta keys to the upstream, and keeps its own envelope keys out', async () => {
    const client = await connectHttp(h.url, 'modern');
    const result = await client.callTool({ name: 'fx__meta', arguments: {}, _meta: { 'example.com/trace': 'abc', traceparent: '00-1-2-01' } });
    const meta = JSON.parse(text(result));
    expect(meta['example.com/trace']).toBe('abc');
    expect(meta.traceparent).toBe('00-1-2-01');
    expect(Object.keys(meta).some((k) => k.startsWith('io.modelcontextprotocol/'))).toBe(false);
    await client.close();
  });

  it('relays an upstream tools/list_changed to connected clients, with the new tool listed', async () => {
    const { client, streamOpen } = await connectWithStream(h.url);
    let changed = 0;
    client.setNotificationHandler('notifications/tools/list_changed' as never, () => {
      changed++;
    });
    await streamOpen; // the notification travels on the GET stream
    await client.callTool({ name: 'fx__grow', arguments: {} });
    await waitFor(() => changed > 0, 'notifications/tools/list_changed');
    await waitFor(async () => (await client.listTools()).tools.some((t) => t.name === 'fx__grown_1'), 'the new tool');
    await client.close();
  });

  it('times out an upstream that hangs, with GH_ERR_UPSTREAM_TIMEOUT', async () => {
    const before = h.gateway.kernel.bundle;
    h.gateway.kernel.replace(
      mergePolicySources([parsePolicy(parseYamlText('p.yaml', 'version: 1\ndefault: allow\nrules:\n  - { id: quick, effect: allow_with_constraints, constraints: { timeoutMs: 200 } }\n', 'GH_ERR_POLICY_INVALID'))]),
    );
    try {
      const client = await connectHttp(h.url);
      const result = await client.callTool({ name: 'fx__slow', arguments: { steps: 1, delayMs: 5_000 } });
      expect(result.isError).toBe(true);
      expect(text(result)).toContain('GH_ERR_UPSTREAM_TIMEOUT');
      await client.close();
    } finally {
      h.gateway.kernel.replace(before);
    }
  });
});

describe('an HTTP upstream that is down at start', () => {
  it('does not stop the others, and its tools appear once it comes up', async () => {
    const port = await freePort();
    const harness = await startHarness({
      upstreams: {
        fx: { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: {}, cwd: ROOT, timeout: 60_000 },
        remote: { url: `http://127.0.0.1:${port}/mcp`, headers: {}, timeout: 10_000 },
      },
    });
    try {
      expect(harness.gateway.directory.get('remote')?.state).toBe('down');
      const server = await startConformanceServer(port);
      try {
        await waitFor(() => harness.gateway.catalog.entries().some((e) => e.name === 'remote__test_simple_text'), 'the late upstream tools', 30_000);
        const client = await connectHttp(harness.url);
        expect(text(await client.callTool({ name: 'remote__test_simple_text', arguments: {} }))).toContain('simple text');
        await client.close();
      } finally {
        await server.close();
      }
    } finally {
      await harness.close();
    }
  }, 60_000);
});


describe('an HTTP upstream that answers an error status', () => {
  it('reaches the client as a coded JSON-RPC error (GH_ERR_UPSTREAM_ERROR, with the status), never a bare one, and a 401 body (which may echo the credential) is not passed on', async () => {
    const upstream = await recordingHttpUpstream();
    const gw = await startHarness({ upstreams: { web: { url: upstream.url, headers: { authorization: 'Bearer gatehouse-own' }, timeout: 10_000 } } as never });
    try {
      await waitFor(() => gw.gateway.catalog.entries().some((e) => e.name === 'web__echo'), 'the HTTP upstream’s tools');
      const client = await connectHttp(gw.url);
      upstream.refused.add('Bearer gatehouse-own'); // from now on the upstream answers 401
      const failed = await client.callTool({ name: 'web__echo', arguments: {} }).then(
        (result) => ({ result }),
        (err: { code?: number; data?: Record<string, unknown> }) => err,
      );
      expect((failed as { data?: unknown }).data).toMatchObject({ code: 'GH_ERR_UPSTREAM_ERROR', httpStatus: 401 });
      expect(JSON.stringify(failed)).not.toContain('gatehouse-own');
      await gw.gateway.audit.flush();
      expect(readFileSync(join(gw.dataDir, 'audit', 'default.jsonl'), 'utf8')).not.toContain('gatehouse-own');
      await client.close();
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});
