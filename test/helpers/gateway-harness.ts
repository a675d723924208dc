import { mkdtempSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { defaultConfig } from '../../src/config/load.ts';
import { createEmbeddedGateway } from '../../src/runtime/embedded.ts';
import { serveHttp } from '../../src/gateway/http-front.ts';
import { silentLogger, type Logger } from '../../src/log.ts';
import type { Gateway } from '../../src/runtime/gateway.ts';
import type { GatehouseConfig } from '../../src/config/schema.ts';
import type { Clock } from '../../src/ports.ts';
import { systemClock } from '../../adapters/memory/clock.ts';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';

export const ROOT = resolve(import.meta.dirname, '../..');

/**
 * The kernel's decision budget in the gateways tests start, instead of 50 ms: the budget is wall time, and on a
 * loaded 2-core machine a decision of a few microseconds is sometimes descheduled for longer than 50 ms, which
 * denies a call the test never meant to test the budget with (the budget has its own tests, on an injected clock).
 */
export const TEST_DECISION_BUDGET_MS = 10_000;
export const FIXTURE_UPSTREAM = join(ROOT, 'test/fixtures/upstream-server.ts');
export const DEFAULT_POLICY = join(ROOT, 'policies/default.yaml');

export interface Harness {
  gateway: Gateway;
  url: string;
  dataDir: string;
  sideEffects: string;
  /** How many times the fixture's destructive `write` really ran. */
  writes(): number;
  close(): Promise<void>;
}

/**
 * The gateway's clock in a test: it runs with the wall clock (sleeps are real, so timers, holds and budgets behave
 * as in production), and `advance` moves it forward at once, so a test can outlive an approval's lifetime (set
 * long, so that nothing else in the test races it) without waiting for it.
 */
export class AdvancingClock implements Clock {
  private skipped = 0;

  now(): number {
    return Date.now() + this.skipped;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return systemClock.sleep(ms, signal);
  }

  advance(ms: number): void {
    this.skipped += ms;
  }
}

/** A real gateway on HTTP port 0 in front of the real fixture upstream (a stdio child process). */
export async function startHarness(overrides: Partial<Omit<GatehouseConfig, 'audit'>> & { audit?: Partial<GatehouseConfig['audit']> } = {}, options: { clock?: Clock; log?: Logger; port?: number } = {}): Promise<Harness> {
  const { audit, ...rest } = overrides;
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
  const sideEffects = join(dataDir, 'side-effects.log');
  const config = defaultConfig({
    dataDir,
    policies: [DEFAULT_POLICY],
    kernel: { decisionBudget: TEST_DECISION_BUDGET_MS, watchPolicies: true },
    upstreams: {
      fx: { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: { SIDE_EFFECTS_FILE: sideEffects }, cwd: ROOT, timeout: 60_000 },
    },
    ...rest,
  });
  // One audit setting at a time: the others keep their defaults.
  if (audit) config.audit = { ...config.audit, ...audit };
  const gateway = createEmbeddedGateway(config, options.log ?? silentLogger, { clock: options.clock });
  await gateway.start();
  await waitFor(() => gateway.catalog.entries().length > 0, 'the fixture tools to be listed');
  const http = await serveHttp(
    gateway.httpServices(),
    { host: '127.0.0.1', port: options.port ?? 0, maxMessageBytes: config.limits.maxMessageBytes, maxSessionsPerCaller: config.limits.maxSessionsPerCaller, allowedHosts: [], allowedOrigins: [], apiKeys: config.auth?.apiKeys ?? [], anonymous: { principal: 'tester', tenant: 'default' } },
    options.log ?? silentLogger,
  );
  return {
    gateway,
    url: http.url,
    dataDir,
    sideEffects,
    writes: () => (existsSync(sideEffects) ? readFileSync(sideEffects, 'utf8').split('\n').filter(Boolean).length : 0),
    close: async () => {
      await http.close();
      await gateway.stop();
    },
  };
}

export type Era = 'legacy' | 'modern';

export async function connectHttp(url: string, era: Era = 'legacy', capabilities: Record<string, unknown> = {}, transport: { fetch?: typeof fetch } = {}): Promise<Client> {
  const client = new Client(
    { name: `test-${era}`, version: '1.0.0' },
    { capabilities, ...(era === 'modern' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {}) } as never,
  );
  await client.connect(new StreamableHTTPClientTransport(new URL(url), transport));
  return client;
}

/**
 * A 2025 client whose `streamOpen` resolves once the server has answered its GET stream: from then on, whatever
 * the server sends the session (a list change, a task's status) reaches it. The server attaches the stream in the
 * same turn as it sends the answer's headers, so nothing sent after this can miss it.
 */
export async function connectWithStream(url: string): Promise<{ client: Client; streamOpen: Promise<void> }> {
  let opened!: () => void;
  const streamOpen = new Promise<void>((resolve) => (opened = resolve));
  const watching: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if ((init?.method ?? 'GET') === 'GET' && response.ok) opened();
    return response;
  };
  return { client: await connectHttp(url, 'legacy', {}, { fetch: watching }), streamOpen };
}

/** A tenant's audit chain in an embedded data dir, read as another process would (the CLI). */
export async function auditOf(dataDir: string, tenant: string): Promise<AuditRecord[]> {
  const store = new FileAuditStore(dataDir);
  const records: AuditRecord[] = [];
  for await (const r of store.read(tenant)) records.push(r);
  await store.close();
  return records;
}

/**
 * How long a test waits for a process it started (a gateway, a worker and their stdio upstreams, each loading tsx)
 * to come up: generous, since on a loaded 2-core machine that takes many seconds, and it only bounds a failure.
 */
export const PROCESS_START_MS = 45_000;

export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * A harness over the fixture upstream with its constraint tools (`FIXTURE_CONSTRAINT_TOOLS`), under one policy
 * text; `calls` is the file the fixture logs each call that reached it to.
 */
export async function startConstraintHarness(policyText: string): Promise<{ h: Harness; client: Client; calls: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-constraints-'));
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, policyText);
  const calls = join(dir, 'calls.log');
  const h = await startHarness({
    policies: [policy],
    upstreams: {
      fx: { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: { SIDE_EFFECTS_FILE: calls, FIXTURE_CONSTRAINT_TOOLS: '1' }, cwd: ROOT, timeout: 60_000 },
    },
  });
  return { h, client: await connectHttp(h.url), calls };
}

/** Writes `<dir>/gatehouse.yaml` for `gatehouse start` on stdio in front of the fixture (`fx`), plus `extra` lines; returns its path. */
export function writeStdioGatewayConfig(dir: string, extra: string[] = []): string {
  const config = join(dir, 'gatehouse.yaml');
  writeFileSync(
    config,
    [
      `dataDir: ${JSON.stringify(join(dir, 'data'))}`,
      'listen: { http: false, stdio: true }',
      `upstreams: { fx: { command: ${JSON.stringify(process.execPath)}, args: ["--import", "tsx", ${JSON.stringify(FIXTURE_UPSTREAM)}], cwd: ${JSON.stringify(ROOT)} } }`,
      `policies: [${JSON.stringify(DEFAULT_POLICY)}]`,
      `kernel: { decisionBudget: ${TEST_DECISION_BUDGET_MS} }`,
      ...extra,
    ].join('\n'),
  );
  return config;
}
