/**
 * `npm run bench -- large`: one large tool result (BENCH_LARGE_MB, default 50 MB of text) through Gatehouse,
 * against the same stdio server spoken to directly, and what everyone else sees meanwhile: the latency of
 * `GET /healthz` and of another upstream's echo calls while the large result is in flight. Three ways:
 *   direct    the stdio server itself
 *   http      `gatehouse start` (Streamable HTTP front) with two stdio upstreams, `echo` (which returns the large
 *             result) and `other`, probed during the large call
 *   wrap      `gatehouse wrap` (stdio front)
 * The figure for each is the median of BENCH_LARGE_ROUNDS rounds (default 3), interleaved.
 */
import { join } from 'node:path';
import { Pool } from 'undici';
import { McpHttpClient } from './http-client.ts';
import { cpuMs, spawnChild } from './processes.ts';
import { McpStdioClient } from './stdio-client.ts';
import { median, percentile } from './stats.ts';
import { GATEHOUSE, ROOT, startGatehouseWithConfig, stdioEcho, writeConfig, type HttpTarget } from './targets.ts';

const LARGE_POLICY = join(ROOT, 'bench/policies/large.yaml');
const PROBE_EVERY_MS = 10;

interface Round {
  directMs: number;
  httpMs: number;
  wrapMs: number;
  /** CPU the serving process spent on the call: the stdio server itself, or Gatehouse (its upstream not counted). */
  directCpuMs: number;
  httpCpuMs: number;
  wrapCpuMs: number;
  /** /healthz latencies during the large HTTP call. */
  health: number[];
  /** Another upstream's echo calls during the large HTTP call. */
  other: number[];
}

export async function printLargeResultBench(workDir: string): Promise<void> {
  const megabytes = Number(process.env.BENCH_LARGE_MB ?? 50);
  const rounds = Number(process.env.BENCH_LARGE_ROUNDS ?? 3);
  const bytes = Math.round(megabytes * 1_000_000);
  // Room for the result and its envelope: the upstream line limit is 16 × maxMessageBytes.
  const limits = { maxMessageBytes: Math.max(4 * 1024 * 1024, Math.ceil((bytes * 1.1) / 16)) };
  const config = writeConfig(workDir, 'large', {
    listen: { http: '127.0.0.1:0', stdio: false },
    dataDir: join(workDir, 'data-large'),
    upstreams: { echo: stdioEcho(), other: stdioEcho() },
    policies: [LARGE_POLICY],
    limits,
    log: { level: 'warn' },
  });
  const [command, ...args] = [stdioEcho().command, ...stdioEcho().args];
  const direct = spawnChild('large-direct', command, args, { cwd: ROOT, protocolStdout: true });
  const wrapConfig = ['wrap', '--policy', LARGE_POLICY, '--data-dir', join(workDir, 'data-large-wrap'), '--name', 'echo', '--', command, ...args];
  const wrap = spawnChild('large-wrap', process.execPath, [GATEHOUSE, ...wrapConfig], { cwd: ROOT, protocolStdout: true });
  let http: HttpTarget | undefined;
  const closers: (() => Promise<void>)[] = [];
  try {
    http = await startGatehouseWithConfig('large-http', 'Gatehouse → two stdio upstreams', config);
    const directClient = new McpStdioClient(direct.proc.stdin!, direct.proc.stdout!);
    const wrapClient = new McpStdioClient(wrap.proc.stdin!, wrap.proc.stdout!);
    await directClient.connect();
    await wrapClient.connect();
    const big = new McpHttpClient(http.url, 'legacy', 1);
    const other = new McpHttpClient(http.url, 'legacy', 1);
    const health = new Pool(new URL(http.url).origin, { connections: 1 });
    closers.push(() => big.close(), () => other.close(), () => health.close());
    await big.connect();
    await other.connect();
    const call = `{"bytes":${bytes}}`;
    // Warm-up: each path once with a small result.
    await directClient.call('big', '{"bytes":1000}');
    await wrapClient.call('echo__big', '{"bytes":1000}');
    await big.call('echo__big', '{"bytes":1000}');
    await other.echo('other__echo');

    const results: Round[] = [];
    for (let round = 0; round < rounds; round++) {
      const [directMs, directCpuMs] = await withCpu(direct.pid, () => attempt('direct', () => directClient.call('big', call)));
      const httpCpuBefore = cpuMs(http.pid);
      const { ms: httpMs, health: healthMs, other: otherMs } = await probed(
        () => attempt('the HTTP front', () => big.call('echo__big', call)),
        async () => {
          const res = await health.request({ path: '/healthz', method: 'GET' });
          await res.body.dump();
        },
        () => other.echo('other__echo'),
      );
      // The probes' own calls are in the HTTP figure too: a few ms of CPU.
      const httpCpuMs = (cpuMs(http.pid) ?? NaN) - (httpCpuBefore ?? NaN);
      const [wrapMs, wrapCpuMs] = await withCpu(wrap.pid, () => attempt('wrap', () => wrapClient.call('echo__big', call)));
      results.push({ directMs, httpMs, wrapMs, directCpuMs, httpCpuMs, wrapCpuMs, health: healthMs, other: otherMs });
      process.stderr.write(`[bench] large result, round ${round + 1}/${rounds}: direct ${directMs.toFixed(0)} ms, http ${httpMs.toFixed(0)} ms, wrap ${wrapMs.toFixed(0)} ms\n`);
    }
    report(megabytes, results);
  } finally {
    for (const close of closers) await close().catch(() => undefined);
    await http?.stop();
    await direct.stop();
    await wrap.stop();
  }
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** The result of `fn` and the CPU (ms) process `pid` spent meanwhile. */
async function withCpu<T>(pid: number, fn: () => Promise<T>): Promise<[T, number]> {
  const before = cpuMs(pid);
  const result = await fn();
  return [result, (cpuMs(pid) ?? NaN) - (before ?? NaN)];
}

/** `timed`, but a failed call is reported (NaN, and why on stderr) rather than ending the bench. */
async function attempt(label: string, fn: () => Promise<unknown>): Promise<number> {
  try {
    return await timed(fn);
  } catch (err) {
    process.stderr.write(`[bench] large result through ${label} failed: ${(err as Error).message.slice(0, 300)}\n`);
    return NaN;
  }
}

/** Runs `main`, and while it runs, probes /healthz every few ms and calls the other upstream back to back. */
async function probed(main: () => Promise<number>, healthz: () => Promise<void>, otherCall: () => Promise<void>): Promise<{ ms: number; health: number[]; other: number[] }> {
  let running = true;
  const health: number[] = [];
  const other: number[] = [];
  const healthLoop = (async () => {
    while (running) {
      health.push(await timed(healthz));
      await new Promise((r) => setTimeout(r, PROBE_EVERY_MS));
    }
  })();
  const otherLoop = (async () => {
    while (running) other.push(await timed(otherCall));
  })();
  const ms = await main();
  running = false;
  await Promise.all([healthLoop, otherLoop]);
  return { ms, health, other };
}

function report(megabytes: number, rounds: Round[]): void {
  const all = (pick: (r: Round) => number[]) => rounds.flatMap(pick).sort((a, b) => a - b);
  const health = all((r) => r.health);
  const other = all((r) => r.other);
  const directMs = median(rounds.map((r) => r.directMs));
  const httpMs = median(rounds.map((r) => r.httpMs));
  const wrapMs = median(rounds.map((r) => r.wrapMs));
  const ms = (v: number) => (Number.isNaN(v) ? 'failed' : `${v.toFixed(v < 10 ? 1 : 0)} ms`);
  console.log(`\nA ${megabytes} MB tool result (median of ${rounds.length} rounds)\n`);
  const cpu = (pick: (r: Round) => number) => ms(median(rounds.map(pick)));
  console.log('| path | time | / direct | CPU of the serving process |');
  console.log('|---|---|---|---|');
  console.log(`| direct: stdio server | ${ms(directMs)} | 1.00 | ${cpu((r) => r.directCpuMs)} (the server) |`);
  console.log(`| Gatehouse, HTTP front | ${ms(httpMs)} | ${(httpMs / directMs).toFixed(2)} | ${cpu((r) => r.httpCpuMs)} (Gatehouse) |`);
  console.log(`| Gatehouse wrap, stdio front | ${ms(wrapMs)} | ${(wrapMs / directMs).toFixed(2)} | ${cpu((r) => r.wrapCpuMs)} (Gatehouse) |`);
  console.log('\nMeanwhile, through the HTTP front (all rounds):\n');
  console.log('| probe | count | p50 | p99 | max |');
  console.log('|---|---|---|---|---|');
  for (const [label, sample] of [['GET /healthz', health], ["another upstream's echo call", other]] as const) {
    console.log(`| ${label} | ${sample.length} | ${ms(percentile(sample, 50))} | ${ms(percentile(sample, 99))} | ${ms(sample[sample.length - 1] ?? NaN)} |`);
  }
}
