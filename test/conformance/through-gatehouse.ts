/**
 * Gatehouse in front of one conformance upstream, in-process, on a free 127.0.0.1 port: the target of the
 * conformance rounds that check the gateway scores what its upstream scores alone. The upstream is exposed
 * with `namespace: false` (the scenarios call fixed names such as `test_simple_text`) and governed by
 * `allow-all.yaml`, so every call takes the full governed path (kernel, scheduler, executor, audit) and runs.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { resolvePaths } from '../../src/config/load.ts';
import { configSchema } from '../../src/config/schema.ts';
import { serveHttp } from '../../src/gateway/http-front.ts';
import { createLogger, type LogLevel } from '../../src/log.ts';
import { createEmbeddedGateway } from '../../src/runtime/embedded.ts';

const HERE = import.meta.dirname;
const ROOT = resolve(HERE, '../..');
export const ALLOW_ALL_POLICY = join(HERE, 'allow-all.yaml');
export const CONFORMANCE_FIXTURE = join(ROOT, 'test/fixtures/conformance-server.ts');
/** The upstream's name in the gateway config (it never shows in tool or prompt names). */
export const UPSTREAM_NAME = 'conformance';

/** The fixture as a stdio upstream: the same server, spoken to in newline-delimited JSON-RPC. */
export const FIXTURE_OVER_STDIO = { command: process.execPath, args: ['--import', 'tsx', CONFORMANCE_FIXTURE, '--stdio'], cwd: ROOT };

export interface GatehouseHandle {
  url: string;
  close(): Promise<void>;
}

/**
 * Starts Gatehouse with one upstream: `{ url }` for Streamable HTTP, `{ command, args, cwd }` for stdio.
 * Resolves once the upstream is connected and its tools are listed.
 */
export async function startGatehouseInFront(
  upstream: { url: string } | { command: string; args: string[]; cwd?: string },
  options: { dataDir?: string; logLevel?: LogLevel; readyTimeoutMs?: number } = {},
): Promise<GatehouseHandle> {
  const config = resolvePaths(
    configSchema.parse({
      listen: { http: '127.0.0.1:0' },
      dataDir: options.dataDir ?? mkdtempSync(join(tmpdir(), 'gatehouse-conformance-data-')),
      policies: [ALLOW_ALL_POLICY],
      upstreams: { [UPSTREAM_NAME]: { ...upstream, namespace: false } },
      log: { level: options.logLevel ?? 'warn' },
    }),
    HERE,
  );
  const log = createLogger(config.log.level);
  const gateway = createEmbeddedGateway(config, log);
  const http = await serveHttp(
    gateway,
    {
      host: '127.0.0.1',
      port: 0,
      maxMessageBytes: config.limits.maxMessageBytes,
      allowedHosts: config.listen.allowedHosts,
      allowedOrigins: config.listen.allowedOrigins,
      apiKeys: [],
      anonymous: { principal: 'conformance', tenant: 'default' },
    },
    log,
  );
  const close = async () => {
    await http.close();
    await gateway.stop();
  };
  try {
    await gateway.start();
    const until = Date.now() + (options.readyTimeoutMs ?? 20_000);
    while (gateway.directory.get(UPSTREAM_NAME)?.state !== 'ready' || gateway.catalog.entries().length === 0) {
      if (Date.now() > until) throw new Error(`the upstream ${JSON.stringify(upstream)} did not become ready with tools listed`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
  return { url: http.url, close };
}
