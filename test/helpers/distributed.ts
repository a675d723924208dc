import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICY, FIXTURE_UPSTREAM, PROCESS_START_MS, ROOT, TEST_DECISION_BUDGET_MS, waitFor } from './gateway-harness.ts';
import { GATEHOUSE_BIN } from './cli.ts';
import { startProcess, type StartedProcess } from './start-process.ts';
import { natsServerAvailable, startNatsServer, type NatsServer } from './nats-server.ts';
import { redisServerAvailable, startRedisServer, type RedisServer } from './redis-server.ts';
import type { GatehouseConfig } from '../../src/config/schema.ts';
import { defaultConfig } from '../../src/config/load.ts';
import { createDistributedGateway } from '../../src/runtime/distributed.ts';
import { serveHttp } from '../../src/gateway/http-front.ts';
import { silentLogger } from '../../src/log.ts';
import type { Gateway } from '../../src/runtime/gateway.ts';

/** Whether nats-server and redis-server can run here (suites skip loudly without them, and fail under CI=true). */
export const clusterAvailable = (): boolean => natsServerAvailable() && redisServerAvailable();

/** A tool result as the SDK client returns it, and what the tests read from one. */
export type ToolResult = { isError?: boolean; content: { type: string; text: string }[]; _meta?: Record<string, unknown> };
export const text = (result: ToolResult): string => result.content.map((c) => c.text).join('');
export const approvalId = (result: ToolResult): string => (result._meta?.['gatehouse/approval'] as { id: string }).id;

export const SIGNING_KEY = 'distributed-test-signing-key-0123456789abcdef';

/** One in-process replica's config on these servers, in front of the fixture upstream run by the replica itself (no pool, no worker). */
export function fixtureReplicaConfig(o: { natsUrl: string; redisUrl: string; dir: string; policies: string[]; sideEffects: string }): GatehouseConfig {
  return defaultConfig({
    mode: 'distributed',
    nats: { url: o.natsUrl, jetstream: false },
    redis: { url: o.redisUrl },
    dataDir: mkdtempSync(join(o.dir, 'replica-')),
    policies: o.policies,
    kernel: { decisionBudget: TEST_DECISION_BUDGET_MS, watchPolicies: false },
    approvals: { ...defaultConfig().approvals, signingKey: SIGNING_KEY },
    upstreams: { fx: { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: { SIDE_EFFECTS_FILE: o.sideEffects }, cwd: ROOT, timeout: 60_000 } },
  });
}
/** The audit checkpoint key every replica and worker shares (distributed mode signs only with `audit.signingKey`). */
export const AUDIT_SIGNING_KEY = '5c'.repeat(32);

/**
 * A distributed-mode config in a fresh folder: two pool-hosted copies of the fixture upstream, `fx` as declared
 * and `fy` with `slow_write` overridden to idempotent; each worker process writes its side effects to the file
 * named by its own GH_SIDE_EFFECTS, so a test knows which worker ran a call.
 */
export function writeDistributedConfig(options: { natsUrl: string; redisUrl: string; jetstream?: boolean; heartbeat?: string; upstreamTimeout?: string; audit?: string; extraConfig?: string[]; extraUpstreams?: string[] }): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gh-dist-'));
  const config = join(dir, 'gatehouse.yaml');
  const fixture = `command: ${JSON.stringify(process.execPath)}, args: ["--import", "tsx", ${JSON.stringify(FIXTURE_UPSTREAM)}], cwd: ${JSON.stringify(ROOT)}, env: { SIDE_EFFECTS_FILE: "\${env:GH_SIDE_EFFECTS}" }, pool: tools, timeout: ${options.upstreamTimeout ?? '60s'}`;
  writeFileSync(
    config,
    [
      'mode: distributed',
      `nats: { url: ${JSON.stringify(options.natsUrl)}, jetstream: ${options.jetstream ?? false} }`,
      `redis: { url: ${JSON.stringify(options.redisUrl)} }`,
      `workers: { heartbeatInterval: ${options.heartbeat ?? '200ms'} }`,
      'listen: { http: "127.0.0.1:0" }',
      `approvals: { signingKey: ${JSON.stringify(SIGNING_KEY)} }`,
      // Checkpoints often, so the replicas' and workers' writes race on them too.
      `audit: { signingKey: ${JSON.stringify(AUDIT_SIGNING_KEY)}, checkpointEvery: 7${options.audit ? `, ${options.audit}` : ''} }`,
      'upstreams:',
      `  fx: { ${fixture} }`,
      `  fy: { ${fixture}, tools: { slow_write: { annotations: { idempotentHint: true } } } }`,
      ...(options.extraUpstreams ?? []).map((line) => `  ${line}`),
      `policies: [${JSON.stringify(DEFAULT_POLICY)}]`,
      `kernel: { decisionBudget: ${TEST_DECISION_BUDGET_MS} }`,
      'log: { level: warn }',
      ...(options.extraConfig ?? []),
    ].join('\n'),
  );
  return { dir, config };
}

export interface WorkerProcess {
  child: ChildProcess;
  /** Where this worker's upstreams record their side effects. */
  sideEffects: string;
  output(): string;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** A real `gatehouse worker --pool tools` in its own process; resolves once it has joined the pool. */
export async function startWorkerProcess(config: string, cwd: string, name: string): Promise<WorkerProcess> {
  const sideEffects = join(cwd, `side-effects-${name}.log`);
  const child = spawn(process.execPath, [GATEHOUSE_BIN, 'worker', '--config', config, '--pool', 'tools'], {
    cwd,
    env: { ...process.env, GH_SIDE_EFFECTS: sideEffects },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const serving = await waitFor(() => /Gatehouse worker wk-/.test(out) || exited(), `worker ${name} to serve its pool`, PROCESS_START_MS).then(
    () => !exited(),
    () => false,
  );
  if (!serving) {
    // Not left running behind a failed test, where it would slow every later one.
    child.kill('SIGKILL');
    throw new Error(`gatehouse worker ${name} did not serve its pool:\n${out}`);
  }
  const end = async (signal: NodeJS.Signals) => {
    if (exited()) return;
    child.kill(signal);
    await new Promise((r) => child.once('exit', r));
  };
  return { child, sideEffects, output: () => out, stop: () => end('SIGTERM'), kill: () => end('SIGKILL') };
}

/** Waits until the replica's /healthz counts `count` live workers in the pool `tools`: it routes only to those. */
/** `authorization`: what /healthz wants when the config has keys or `auth.oauth`. */
export async function waitForLiveWorkers(gateway: StartedProcess, count: number, authorization?: string): Promise<void> {
  const live = async () => {
    const response = await fetch(gateway.url.replace(/\/mcp$/, '/healthz'), authorization ? { headers: { authorization } } : {});
    const body = (await response.json()) as { links?: { workers?: Record<string, number> } };
    return body.links?.workers?.tools === count;
  };
  await waitFor(live, `the replica to hear ${count} live workers`);
}

/** How many times `key` was written to a side-effects file. */
export function countWrites(file: string, key: string): number {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((line) => line === key).length : 0;
}

export interface Cluster {
  nats: NatsServer;
  redis: RedisServer;
  dir: string;
  config: string;
  gateways: StartedProcess[];
  workers: WorkerProcess[];
  /** How many times `key` was written, over every worker that ever ran. */
  writes(key: string): number;
  /** The worker whose upstream wrote `key`, if any. */
  workerThatWrote(key: string): WorkerProcess | undefined;
  addWorker(name: string): Promise<WorkerProcess>;
  stop(): Promise<void>;
}

/** NATS and Redis started here, then `workers` workers and `gateways` gateway replicas on one shared config. */
export async function startCluster(
  options: {
    gateways?: number;
    workers?: number;
    jetstream?: boolean;
    persistentRedis?: boolean;
    upstreamTimeout?: string;
    /** More `audit:` settings (`key: value, …`). */ audit?: string;
    /** Top-level config lines added to the file. */ extraConfig?: string[];
    /** More upstreams, one `name: { … }` a line (an HTTP upstream with `pool: tools` is hosted by the workers). */ extraUpstreams?: string[];
  } = {},
): Promise<Cluster> {
  const [nats, redis] = await Promise.all([startNatsServer({ jetstream: options.jetstream }), startRedisServer({ persistent: options.persistentRedis })]);
  const { dir, config } = writeDistributedConfig({ natsUrl: nats.url, redisUrl: redis.url, jetstream: options.jetstream, upstreamTimeout: options.upstreamTimeout, audit: options.audit, extraConfig: options.extraConfig, extraUpstreams: options.extraUpstreams });
  process.env.GH_SIDE_EFFECTS ??= '/dev/null'; // gateways interpolate the config too, but never run the pool's upstreams
  const everWorked: WorkerProcess[] = [];
  const addWorker = async (name: string) => {
    const worker = await startWorkerProcess(config, dir, name);
    everWorked.push(worker);
    return worker;
  };
  const gateways: StartedProcess[] = [];
  const stop = async () => {
    await Promise.allSettled([...gateways, ...everWorked].map((p) => (p.child.kill('SIGCONT'), p.stop())));
    await Promise.allSettled([nats.stop(), redis.stop()]);
  };
  let workers: WorkerProcess[];
  try {
    workers = await Promise.all(Array.from({ length: options.workers ?? 2 }, (_, i) => addWorker(`w${i + 1}`)));
    await Promise.all(Array.from({ length: options.gateways ?? 2 }, async () => void gateways.push(await startProcess(config, dir))));
  } catch (err) {
    // A cluster that did not come up is stopped whole: its servers and processes would load every later test.
    await stop();
    throw err;
  }
  return {
    nats,
    redis,
    dir,
    config,
    gateways,
    workers,
    writes: (key) => everWorked.reduce((n, w) => n + countWrites(w.sideEffects, key), 0),
    workerThatWrote: (key) => everWorked.find((w) => countWrites(w.sideEffects, key) > 0),
    addWorker,
    stop,
  };
}

/** A distributed gateway replica in this process, serving HTTP on port 0 once its upstreams listed their tools. */
export interface Replica {
  gateway: Gateway;
  url: string;
  close(): Promise<void>;
}

export async function startReplicaInProcess(config: GatehouseConfig): Promise<Replica> {
  const gateway = await createDistributedGateway(config, silentLogger);
  await gateway.start();
  await waitFor(() => gateway.catalog.entries().length > 0, 'the fixture tools to be listed');
  const http = await serveHttp(
    gateway.httpServices(),
    { host: '127.0.0.1', port: 0, maxMessageBytes: config.limits.maxMessageBytes, allowedHosts: [], allowedOrigins: [], apiKeys: [], anonymous: { principal: 'tester', tenant: 'default' } },
    silentLogger,
  );
  return {
    gateway,
    url: http.url,
    close: async () => {
      await http.close();
      await gateway.stop();
    },
  };
}
