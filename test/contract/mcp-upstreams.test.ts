import { StdioUpstream } from '../../adapters/mcp/stdio-upstream.ts';
import { launchStdioServer } from '../../adapters/mcp/stdio-launch.ts';
import { HttpUpstream } from '../../adapters/mcp/http-upstream.ts';
import { silentLogger } from '../../src/log.ts';
import type { Upstream } from '../../src/ports.ts';
import { join } from 'node:path';
import { FIXTURE_UPSTREAM, ROOT } from '../helpers/gateway-harness.ts';
import { startConformanceServer } from '../fixtures/conformance-server.ts';
import { expect, it } from 'vitest';
import { runUpstreamContract } from './upstream.contract.ts';

const CONFORMANCE_SERVER = join(ROOT, 'test/fixtures/conformance-server.ts');

runUpstreamContract('stdio process (NDJSON)', async () => {
  const upstream = new StdioUpstream('fx', { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: {}, cwd: ROOT }, silentLogger);
  return {
    upstream,
    serverInfo: { name: 'gatehouse-test-upstream', version: '1.0.0' },
    echo: { name: 'echo', arguments: { text: 'hi' }, text: 'echo: hi' },
    progress: { name: 'slow', arguments: { steps: 2, delayMs: 10 } },
    slow: { name: 'slow', arguments: { steps: 1, delayMs: 5_000 }, timeoutMs: 150 },
    stop: () => upstream.close(),
  };
});

/** The conformance fixture's tools, as the contract uses them: it serves both revisions, over HTTP and stdio. */
function onConformanceFixture(upstream: Upstream, stop: () => Promise<void>) {
  return {
    upstream,
    serverInfo: { name: 'gatehouse-conformance-fixture', version: '1.0.0' },
    echo: { name: 'test_simple_text', arguments: {}, text: 'This is a simple text response for testing.' },
    progress: { name: 'test_tool_with_progress', arguments: {} },
    // Without a progress token it sends nothing while it sleeps its 3 × 50 ms.
    slow: { name: 'test_tool_with_progress', arguments: {}, timeoutMs: 40 },
    stop,
  };
}

// Asked `server/discover`, the fixture is spoken to in 2026-07-28; pinned, in 2025.
for (const era of ['auto', 'legacy'] as const) {
  runUpstreamContract(`Streamable HTTP (undici)${era === 'legacy' ? ', pinned to 2025' : ''}`, async () => {
    const server = await startConformanceServer(0);
    const upstream = new HttpUpstream('conf', { url: server.url, headers: {}, era }, silentLogger);
    return onConformanceFixture(upstream, async () => {
      await upstream.close();
      await server.close();
    });
  });
}

runUpstreamContract('stdio process, 2026-07-28 (serveStdio)', async () => {
  const upstream = new StdioUpstream('conf', { command: process.execPath, args: ['--import', 'tsx', CONFORMANCE_SERVER, '--stdio'], env: {}, cwd: ROOT }, silentLogger);
  return onConformanceFixture(upstream, () => upstream.close());
});

it('each upstream speaks the revision it offers: 2026-07-28 to serveStdio and createMcpHandler servers, 2025 to a 2025 server and to one pinned to it', async () => {
  const server = await startConformanceServer(0);
  const upstreams = [
    new HttpUpstream('modern', { url: server.url, headers: {} }, silentLogger),
    new HttpUpstream('pinned', { url: server.url, headers: {}, era: 'legacy' }, silentLogger),
    new StdioUpstream('plain', { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: {}, cwd: ROOT }, silentLogger),
    new StdioUpstream('dual', { command: process.execPath, args: ['--import', 'tsx', CONFORMANCE_SERVER, '--stdio'], env: {}, cwd: ROOT }, silentLogger),
  ];
  try {
    await Promise.all(upstreams.map((u) => u.start({})));
    expect(upstreams.map((u) => [u.name, u.state, u.era])).toEqual([
      ['modern', 'ready', 'modern'],
      ['pinned', 'ready', 'legacy'],
      ['plain', 'ready', 'legacy'],
      ['dual', 'ready', 'modern'],
    ]);
    expect(server.openSessions()).toBe(1); // the pinned one's: a 2026-07-28 client keeps none
    // What 2026-07-28 removed is refused, coded, before it is sent; the log level rides in the envelope instead, and
    // a subscription in the upstream's listen.
    await expect(upstreams[0].request('ping', undefined)).rejects.toMatchObject({ code: 'GH_ERR_ERA_UNTRANSLATABLE' });
    await expect(upstreams[0].request('resources/subscribe', { uri: 'test://static-text' })).resolves.toEqual({});
    await expect(upstreams[3].request('logging/setLevel', { level: 'debug' })).resolves.toEqual({});
  } finally {
    await Promise.all(upstreams.map((u) => u.close()));
    await server.close();
  }
});

it('an HTTP upstream ends its 2025 session with a DELETE that names it, when it closes', async () => {
  const server = await startConformanceServer(0);
  const upstream = new HttpUpstream('conf', { url: server.url, headers: {}, era: 'legacy' }, silentLogger);
  try {
    await upstream.start({});
    expect(server.openSessions()).toBe(1);
    await upstream.close();
    expect(server.openSessions()).toBe(0);
  } finally {
    await upstream.close();
    await server.close();
  }
});

it('a stdio server started early (gatehouse wrap) is adopted; one that died before it was adopted fails with its last words', async () => {
  const running = launchStdioServer({ command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: {}, cwd: ROOT });
  const adopted = new StdioUpstream('fx', { command: 'never-run', args: [], env: {}, launched: running }, silentLogger);
  await adopted.start({});
  expect(adopted.pid).toBe(running.child.pid);
  const { tools } = (await adopted.request('tools/list', undefined, { timeoutMs: 10_000 })) as { tools: { name: string }[] };
  expect(tools.some((t) => t.name === 'echo')).toBe(true);
  await adopted.close();

  const dead = launchStdioServer({ command: process.execPath, args: ['-e', 'console.error("starting"); console.error("no config"); process.exit(3)'], env: {} });
  await new Promise((resolve) => dead.child.once('exit', resolve));
  const late = new StdioUpstream('gone', { command: process.execPath, args: ['-e', 'setTimeout(() => {}, 60000)'], env: {}, launched: dead }, silentLogger);
  await late.start({});
  expect(late.failure).toMatchObject({ stderr: ['starting', 'no config'] });
  await expect(late.request('tools/list', undefined, { timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'GH_ERR_UPSTREAM_UNAVAILABLE', data: { upstream: 'gone', stderr: ['starting', 'no config'] } });
  await late.close();
});
