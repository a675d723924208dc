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
import type { Gateway } from '../../src/runtime/gateway.ts';

const HERE = import.meta.dirname;
const ROOT = resolve(HERE, '../..');
export const ALLOW_ALL_POLICY = join(HERE, 'allow-all.yaml');
export const CONFORMANCE_FIXTURE = join(ROOT, 'test/fixtures/conformance-server.ts');
/** The upstream's name in the gateway config (it never shows in tool or prompt names). */
export const UPSTREAM_NAME = 'conformance';

/** The fixture as a stdio upstream: the same server, spoken to in newline-delimited JSON-RPC. */
export const FIXTURE_OVER_STDIO = { command: process.execPath, args: ['--import', 'tsx', CONFORMANCE_FIXTURE, '--stdio'], cwd: ROOT };

type UpstreamSpec = { url: string } | { command: string; args: string[]; cwd?: string };

export interface GatehouseHandle {
  url: string;
  gateway: Gateway;
  close(): Promise<void>;
}

export interface GatehouseOptions {
  dataDir?: string;
  /** Policy files (default: allow-all.yaml). */
  policies?: string[];
  logLevel?: LogLevel;
  readyTimeoutMs?: number;
}

/**
 * Starts Gatehouse with one upstream: `{ url }` for Streamable HTTP, `{ command, args, cwd }` for stdio,
 * exposed under its own names. Resolves once the upstream is connected and its tools are listed.
 */
export function startGatehouseInFront(upstream: UpstreamSpec, options: GatehouseOptions = {}): Promise<GatehouseHandle> {
  return startGatehouse({ [UPSTREAM_NAME]: { ...upstream, namespace: false } }, options);
}

/** Starts Gatehouse on a free 127.0.0.1 port with these upstreams (config entries); resolves once all are ready. */
export async function startGatehouse(upstreams: Record<string, UpstreamSpec & { namespace?: boolean }>, options: GatehouseOptions = {}): Promise<GatehouseHandle> {
  const config = resolvePaths(
    configSchema.parse({
      listen: { http: '127.0.0.1:0' },
      dataDir: options.dataDir ?? mkdtempSync(join(tmpdir(), 'gatehouse-conformance-data-')),
      policies: options.policies ?? [ALLOW_ALL_POLICY],
      upstreams,
      log: { level: options.logLevel ?? 'warn' },
    }),
    HERE,
  );
  const log = createLogger(config.log.level);
  const gateway = createEmbeddedGateway(config, log);
  const http = await serveHttp(
    gateway.httpServices(),
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
    while (!gateway.directory.all().every((u) => u.state === 'ready')) {
      if (Date.now() > until) throw new Error(`upstreams ${Object.keys(upstreams).join(', ')} did not become ready`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // The catalog lists tools in the background once an upstream is ready; have it done before serving.
    await Promise.all(gateway.directory.all().map((u) => gateway.catalog.refresh(u)));
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
  return { url: http.url, gateway, close };
}
