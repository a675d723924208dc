/**
 * The servers under test, each started as the child process(es) it is in reality, bound to 127.0.0.1.
 * Every target serves the same `echo` tool from bench/echo-server.ts; only what stands in front differs.
 */
import { realpathSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { McpHttpClient } from './http-client.ts';
import { McpStdioClient } from './stdio-client.ts';
import { connectSdkStdio, type SdkLine } from './sdk-stdio-clients.ts';
import { freePort, spawnChild, type Child } from './processes.ts';

/**
 * The repository, and the CLI every Gatehouse target runs: this checkout's, or another build's
 * (`BENCH_GATEHOUSE_BIN=/path/to/other/bin/gatehouse.js`), to compare two builds with the same bench.
 */
export const ROOT = resolve(import.meta.dirname, '..');
const ECHO_SERVER = join(ROOT, 'bench/echo-server.ts');
export const GATEHOUSE = process.env.BENCH_GATEHOUSE_BIN ?? join(ROOT, 'bin/gatehouse.js');
export const ALLOW_POLICY = join(ROOT, 'bench/policies/allow.yaml');
export const CONSTRAINED_POLICY = join(ROOT, 'bench/policies/constrained.yaml');
/** Gatehouse names an upstream's tools `<upstream>__<tool>`; the bench calls its upstream `echo`. */
const GATED_TOOL = 'echo__echo';

const echoCommand = (mode: 'stdio' | 'stdio-modern' | 'http') => [process.execPath, '--import', 'tsx', ECHO_SERVER, mode];

export interface HttpTarget {
  key: string;
  label: string;
  url: string;
  tool: string;
  /** The process whose RSS is reported (the proxy or gateway itself, not its upstream). */
  pid: number;
  stop(): Promise<void>;
}

export interface StdioTarget {
  key: string;
  label: string;
  /** The bench's raw NDJSON client, or an official SDK client (bench/sdk-stdio-clients.ts). */
  client: Pick<McpStdioClient, 'echo'>;
  tool: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * The SDK's own HTTP server serving the echo tool, the baseline: `http` is the sessionful transport in JSON
 * response mode (2025 clients); `handler` is createMcpHandler, the SDK's entry for 2026-07-28 clients.
 */
export async function startDirectHttp(key: string, label: string, mode: 'http' | 'handler' = 'http'): Promise<HttpTarget> {
  const child = spawnChild(key, process.execPath, ['--import', 'tsx', ECHO_SERVER, mode], { cwd: ROOT });
  const [, url] = await child.waitForStdout(/^listening (\S+)/);
  return ready({ key, label, url, tool: 'echo', pid: child.pid, stop: () => child.stop() }, child);
}

/**
 * `gatehouse start` with an HTTP front and one upstream named `echo`: a stdio child it spawns itself (the
 * natural deployment), or an SDK HTTP echo server at `upstreamUrl`.
 */
export async function startGatehouseHttp(key: string, label: string, options: { policy: string; workDir: string; upstreamUrl?: string; /** The stdio upstream in 2026-07-28 (serveStdio) rather than 2025. */ modernUpstream?: boolean; metrics?: boolean; /** More top-level config keys (`audit`, `kernel` …). */ extra?: Record<string, unknown> }): Promise<HttpTarget> {
  const config = {
    listen: { http: '127.0.0.1:0', stdio: false },
    dataDir: join(options.workDir, `data-${key}`),
    upstreams: { echo: options.upstreamUrl ? { url: options.upstreamUrl } : stdioEcho(options.modernUpstream ? 'stdio-modern' : 'stdio') },
    policies: [options.policy],
    metrics: { enabled: options.metrics ?? metricsByDefault() },
    // The bench measures the governed path, not the decision budget: on a shared, loaded machine a gateway
    // descheduled mid-decision (or slowed by a profiler) would be refused at the default 50 ms and end the run.
    kernel: { decisionBudget: '1s' },
    ...options.extra,
  };
  return startGatehouseWithConfig(key, label, writeConfig(options.workDir, key, config));
}

/** `BENCH_METRICS=off` runs every Gatehouse target with `metrics.enabled: false` (the default is on). */
export function metricsByDefault(): boolean {
  return process.env.BENCH_METRICS !== 'off';
}

/** The stdio echo server as a config's upstream entry. */
export function stdioEcho(mode: 'stdio' | 'stdio-modern' = 'stdio'): { command: string; args: string[]; cwd: string } {
  const [command, ...args] = echoCommand(mode);
  return { command, args, cwd: ROOT };
}

/** Writes a config file (JSON is YAML) into the work dir and returns its path. */
export function writeConfig(workDir: string, key: string, config: Record<string, unknown>): string {
  const file = join(workDir, `${key}.yaml`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** `gatehouse start --config <file>`, ready once a fresh session lists the gated echo tool. */
export async function startGatehouseWithConfig(key: string, label: string, file: string): Promise<HttpTarget> {
  const child = spawnChild(key, process.execPath, [...benchNodeArgs(), GATEHOUSE, 'start', '--config', file], { cwd: ROOT });
  const [, url] = await child.waitForStdout(/MCP endpoint \(Streamable HTTP\): (\S+)/);
  return ready({ key, label, url, tool: GATED_TOOL, pid: child.pid, stop: () => child.stop() }, child);
}

/** BENCH_NODE_ARGS (`--cpu-prof --cpu-prof-dir=/tmp/prof`): node flags for every Gatehouse process, which NODE_OPTIONS refuses. */
function benchNodeArgs(): string[] {
  return process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
}

/** `gatehouse worker --pool <pool>` on a config file; resolves once it has joined. */
export async function startGatehouseWorker(key: string, file: string, pool: string): Promise<Child> {
  const child = spawnChild(key, process.execPath, [GATEHOUSE, 'worker', '--config', file, '--pool', pool], { cwd: ROOT });
  await child.waitForStdout(/^Gatehouse worker /);
  return child;
}

/**
 * mcp-proxy as a plain pass-through in front of the stdio echo server: Streamable HTTP only, stateful
 * sessions and SSE responses as by default, and no resumability event store (`--no-eventStore`, which its
 * help recommends for request/response-only use). With the store on, its sequential p50 is about 2.5x worse
 * on this kind of machine, so this is the stronger baseline.
 */
export async function startMcpProxy(key: string, label: string): Promise<HttpTarget> {
  const port = await freePort();
  const bin = realpathSync(join(ROOT, 'node_modules/.bin/mcp-proxy'));
  const child = spawnChild(key, process.execPath, [bin, '--host', '127.0.0.1', '--port', String(port), '--server', 'stream', '--no-eventStore', '--', ...echoCommand('stdio')], { cwd: ROOT });
  await child.waitForStdout(/starting server on port/);
  return ready({ key, label, url: `http://127.0.0.1:${port}/mcp`, tool: 'echo', pid: child.pid, stop: () => child.stop() }, child);
}

/** The stdio echo server itself, spoken to directly: the stdio baseline. */
export async function startDirectStdio(key: string, label: string): Promise<StdioTarget> {
  const [command, ...args] = echoCommand('stdio');
  return stdioTarget(key, label, spawnChild(key, command, args, { cwd: ROOT, protocolStdout: true }), 'echo');
}

/** A byte-copying relay in front of the stdio echo server: what the extra process hop alone costs. */
export async function startNullRelay(key: string, label: string, mode: 'bytes' | 'json' = 'bytes'): Promise<StdioTarget> {
  const args = ['--import', 'tsx', join(ROOT, 'bench/null-relay.ts'), ...(mode === 'json' ? ['--json'] : []), ...echoCommand('stdio')];
  return stdioTarget(key, label, spawnChild(key, process.execPath, args, { cwd: ROOT, protocolStdout: true }), 'echo');
}

/** `gatehouse wrap -- <echo server>`: Gatehouse's stdio front, as an MCP host's server entry runs it. */
export async function startGatehouseWrap(key: string, label: string, workDir: string): Promise<StdioTarget> {
  return stdioTarget(key, label, spawnChild(key, process.execPath, wrapArgs(key, workDir), { cwd: ROOT, protocolStdout: true }), GATED_TOOL);
}

/** Node's arguments for `gatehouse wrap --policy allow -- <echo server>`, its data in the work dir. */
function wrapArgs(key: string, workDir: string): string[] {
  return [...benchNodeArgs(), GATEHOUSE, 'wrap', '--policy', ALLOW_POLICY, '--data-dir', join(workDir, `data-${key}`), '--name', 'echo', '--', ...echoCommand('stdio')];
}

/**
 * The stdio echo server (`via: 'direct'`) or `gatehouse wrap` in front of it, spawned and spoken to by an official
 * SDK client's own stdio transport, as an MCP host does: the stdio hop as hosts see it.
 */
export async function startSdkStdio(key: string, label: string, line: SdkLine, via: 'direct' | 'wrap', workDir: string): Promise<StdioTarget> {
  const [command, ...args] = via === 'direct' ? echoCommand('stdio') : [process.execPath, ...wrapArgs(key, workDir)];
  const tool = via === 'direct' ? 'echo' : GATED_TOOL;
  const client = await withTimeout(connectSdkStdio(line, command, args, ROOT), 30_000, `${key} to answer initialize`);
  try {
    await waitForTool(() => client.listTools(), tool, key);
  } catch (err) {
    await client.close();
    throw err;
  }
  return { key, label, client, tool, pid: client.pid, stop: () => client.close() };
}

async function stdioTarget(key: string, label: string, child: Child, tool: string): Promise<StdioTarget> {
  const client = new McpStdioClient(child.proc.stdin!, child.proc.stdout!);
  try {
    await withTimeout(client.connect(), 30_000, `${key} to answer initialize`);
    await waitForTool(() => client.listTools(), tool, key);
  } catch (err) {
    await child.stop();
    throw new Error(`${(err as Error).message}\n${child.stderrTail()}`);
  }
  return { key, label, client, tool, pid: child.pid, stop: () => child.stop() };
}

/**
 * An HTTP target is ready once a fresh session lists its echo tool: mcp-proxy announces its port before it
 * listens, and Gatehouse lists its upstream's tools after it starts serving.
 */
async function ready(target: HttpTarget, child: Child): Promise<HttpTarget> {
  try {
    await waitForTool(async () => {
      const client = new McpHttpClient(target.url, 'legacy', 1);
      try {
        await client.connect();
        return await client.listTools();
      } finally {
        await client.close();
      }
    }, target.tool, target.key);
  } catch (err) {
    await child.stop();
    throw new Error(`${(err as Error).message}\n${child.stderrTail()}`);
  }
  return target;
}

async function waitForTool(list: () => Promise<string[]>, tool: string, key: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let problem: string;
    try {
      const tools = await list();
      if (tools.includes(tool)) return;
      problem = `it lists ${tools.join(', ') || 'no tools'}`;
    } catch (err) {
      problem = (err as Error).message;
    }
    if (Date.now() > until) throw new Error(`${key} did not list ${tool} within ${timeoutMs} ms (${problem})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    }),
  ]);
}

/** An empty Node process (optionally with the tsx loader every server here runs under): the RSS floor. */
export async function startIdleNode(key: string, label: string, withTsx: boolean): Promise<{ key: string; label: string; pid: number; stop(): Promise<void> }> {
  const args = [...(withTsx ? ['--import', 'tsx'] : []), '--input-type=module', '-e', 'console.log("ready"); process.stdin.resume().once("end", () => process.exit(0));'];
  const child = spawnChild(key, process.execPath, args, { cwd: ROOT });
  await child.waitForStdout(/^ready/);
  return { key, label, pid: child.pid, stop: () => child.stop() };
}
