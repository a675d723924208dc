import { StdioUpstream } from '../../adapters/mcp/stdio-upstream.ts';
import { HttpUpstream } from '../../adapters/mcp/http-upstream.ts';
import { silentLogger } from '../../src/log.ts';
import { FIXTURE_UPSTREAM, ROOT } from '../helpers/gateway-harness.ts';
import { startConformanceServer } from '../fixtures/conformance-server.ts';
import { expect, it } from 'vitest';
import { runUpstreamContract } from './upstream.contract.ts';

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

runUpstreamContract('Streamable HTTP (undici)', async () => {
  const server = await startConformanceServer(0);
  const upstream = new HttpUpstream('conf', { url: server.url, headers: {} }, silentLogger);
  return {
    upstream,
    serverInfo: { name: 'gatehouse-conformance-fixture', version: '1.0.0' },
    echo: { name: 'test_simple_text', arguments: {}, text: 'This is a simple text response for testing.' },
    progress: { name: 'test_tool_with_progress', arguments: {} },
    // Without a progress token it sends nothing while it sleeps its 3 × 50 ms.
    slow: { name: 'test_tool_with_progress', arguments: {}, timeoutMs: 40 },
    stop: async () => {
      await upstream.close();
      await server.close();
    },
  };
});

it('an HTTP upstream ends its 2025 session with a DELETE that names it, when it closes', async () => {
  const server = await startConformanceServer(0);
  const upstream = new HttpUpstream('conf', { url: server.url, headers: {} }, silentLogger);
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
