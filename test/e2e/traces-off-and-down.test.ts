import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { Logger } from '../../src/log.ts';
import { recordingLogger } from '../helpers/capturing-log.ts';
import { GATEHOUSE_BIN } from '../helpers/cli.ts';
import { connectHttp, ROOT, startHarness, waitFor, writeStdioGatewayConfig } from '../helpers/gateway-harness.ts';
import { otlpReceiver } from '../helpers/otlp-receiver.ts';
import { freePort } from '../helpers/server-process.ts';

// The README's promises about tracing's cost: off, the SDK is never loaded; on, a collector that is down or stuck
// costs spans, never a call, and never holds up a stop for long.

// Spans are exported in batches; a short delay has the exports (and their failures) happen during the calls.
process.env.OTEL_BSP_SCHEDULE_DELAY = '50';

const MODULE_LOG_HOOK = join(ROOT, 'test/fixtures/module-log-hook.mjs');
const OTLP_KEY = 'otlp-secret-api-key-5678';

/** Runs `gatehouse start` on stdio with `telemetry` (a YAML line or none), makes one call, and returns the OpenTelemetry modules it resolved. */
async function modulesLoaded(...extra: (string | undefined)[]): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-traces-off-'));
  const config = writeStdioGatewayConfig(dir, extra.filter((line) => line !== undefined));
  const moduleLog = join(dir, 'modules.log');
  const client = new Client({ name: 'traces-off', version: '1' });
  const env = { ...(process.env as Record<string, string>), GH_MODULE_LOG: moduleLog };
  await client.connect(new StdioClientTransport({ command: process.execPath, args: ['--import', MODULE_LOG_HOOK, GATEHOUSE_BIN, 'start', '--config', config], cwd: dir, env, stderr: 'pipe' }));
  try {
    await waitFor(async () => (await client.listTools()).tools.some((t) => t.name === 'fx__echo'), 'the fixture’s tools');
    const result = await client.callTool({ name: 'fx__echo', arguments: { text: 'hi' } });
    expect(result.isError).toBeFalsy();
  } finally {
    await client.close();
  }
  return existsSync(moduleLog) ? readFileSync(moduleLog, 'utf8').split('\n').filter(Boolean) : [];
}

/** Modules of the OpenTelemetry SDK or of Gatehouse's adapter on it (its source, or its chunk of the bundle): everything but the API's no-op. */
const sdkModules = (urls: string[]) => urls.filter((url) => /adapters\/otel\/|dist\/chunks\/otlp-tracing-|@opentelemetry\/(?!api\/)/.test(url));

/** The modules the hook logs for a process that runs `script`. */
function modulesOfScript(script: string): string[] {
  const moduleLog = join(mkdtempSync(join(tmpdir(), 'gh-modules-')), 'modules.log');
  execFileSync(process.execPath, ['--import', MODULE_LOG_HOOK, '--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, GH_MODULE_LOG: moduleLog } });
  return readFileSync(moduleLog, 'utf8').split('\n').filter(Boolean);
}

/** undici's modules: a gateway with no HTTP client (stdio upstreams only, as `wrap`) never loads it (README code map). */
const undiciModules = (urls: string[]) => urls.filter((url) => url.includes('/node_modules/undici/'));

/** A collector that takes the connection and the request, and never answers. */
async function silentCollector(): Promise<{ endpoint: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server: Server = createServer(() => void requests++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A gateway exporting to `endpoint`, twenty calls through it, and its stop: every call must answer. */
async function callsWithCollectorAt(endpoint: string, log: Logger): Promise<void> {
  const h = await startHarness({ telemetry: { otlp: { endpoint, headers: { 'x-api-key': OTLP_KEY } } } as never }, { log });
  const client = await connectHttp(h.url);
  try {
    for (let i = 0; i < 20; i++) {
      const result = await client.callTool({ name: 'fx__echo', arguments: { text: `call ${i}` } });
      expect(result.isError).toBeFalsy();
    }
  } finally {
    await client.close();
    await h.close();
  }
}

describe('tracing off costs nothing', () => {
  it('without telemetry.otlp the OpenTelemetry SDK is never loaded; with it, it is (the check can see it); undici never is, without an HTTP client', async () => {
    const receiver = await otlpReceiver();
    try {
      const [off, on] = await Promise.all([modulesLoaded(undefined), modulesLoaded(`telemetry: { otlp: { endpoint: ${JSON.stringify(receiver.endpoint)} } }`)]);
      expect(sdkModules(off)).toEqual([]);
      // undici too, which only HTTP clients need (the check can see it: a process that imports it is logged).
      expect(undiciModules([...off, ...on])).toEqual([]);
      expect(undiciModules(modulesOfScript('await import("undici")')).length).toBeGreaterThan(0);
      expect(sdkModules(on).some((url) => /(adapters\/otel\/otlp-tracing\.ts|dist\/chunks\/otlp-tracing-\w+\.js)$/.test(url))).toBe(true);
      expect(sdkModules(on).some((url) => url.includes('@opentelemetry/sdk-trace-base'))).toBe(true);
    } finally {
      await receiver.close();
    }
  });
});

describe('a collector that is down', () => {
  it('loses spans, never calls: every call answers, and the log says spans were lost (never the headers)', async () => {
    const logs = recordingLogger();
    await callsWithCollectorAt(`http://127.0.0.1:${await freePort()}`, logs);
    expect(logs.text()).toContain('tracing: spans lost');
    expect(logs.text()).not.toContain(OTLP_KEY);
  });

  it('one that takes requests and never answers holds up no call, and the stop waits for it only so long', async () => {
    const collector = await silentCollector();
    const logs = recordingLogger();
    try {
      await callsWithCollectorAt(collector.endpoint, logs);
      expect(collector.requests()).toBeGreaterThan(0);
      expect(logs.text()).toContain('tracing: spans lost');
    } finally {
      await collector.close();
    }
  });
});
