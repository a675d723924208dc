/**
 * `npm run bench`: Gatehouse against baselines measured in the same run, on the same machine.
 *   HTTP   an echo tool call over Streamable HTTP: the SDK's own server (direct), Gatehouse (allow, and
 *          allow_with_constraints), and mcp-proxy, at each concurrency, in both protocol eras.
 *   stdio  `gatehouse wrap` against the same stdio server spoken to directly (sequential calls).
 *   RSS    of every server process, idle after startup and a few calls, and again after the run.
 * Rounds are interleaved and each figure is the median over rounds. A missed target is reported, never
 * fatal: the exit code is 0 unless something crashed. Env: BENCH_CALLS, BENCH_STDIO_CALLS, BENCH_ROUNDS,
 * BENCH_WARMUP, BENCH_CONCURRENCY ("1,16"), BENCH_ERAS ("legacy,modern").
 * The safety kernel's own figures (bench/kernel.ts) come first; `npm run bench -- kernel` prints only those.
 * Then an approval's round trip (bench/approvals.ts); `npm run bench -- approvals` prints only that.
 * Distributed mode against embedded (bench/distributed.ts) comes last; `npm run bench -- distributed` runs only it.
 * `npm run bench -- main` runs only the main table (HTTP, stdio, RSS, CPU per call, ratios).
 * The audit store's fsync modes (bench/audit.ts) run only as `npm run bench -- audit`; the audit query over a long
 * chain (bench/audit-query.ts) only as `npm run bench -- audit-query`; the seal of a segment alone (also the end of
 * `audit`) as `npm run bench -- segments`; the Policy and Overview pages' audit reads
 * (bench/console-pages.ts) only as `npm run bench -- console-pages`.
 * `npm run bench -- large` runs only the large-result case (bench/large-result.ts), which the full run leaves out.
 * Metrics on against off (bench/metrics.ts) runs after the main table; `npm run bench -- metrics` runs only it.
 * The console's live feed open against none (bench/console.ts) runs after metrics; `npm run bench -- console` runs only it.
 * BENCH_METRICS=off runs every Gatehouse target of the main table with `metrics.enabled: false`.
 * An audit sink on against none (bench/audit-sinks.ts) runs only as `npm run bench -- sinks`.
 * Traces against none (bench/traces.ts) run after the metrics; `npm run bench -- traces` runs only them.
 * What packs cost to load and to decide with (bench/packs.ts) runs only as `npm run bench -- packs`.
 * What checking an API key and an OAuth access token cost (bench/oauth.ts) runs only as `npm run bench -- oauth`.
 * Audit retention on a Redis chain (bench/redis-retention.ts) runs only as `npm run bench -- redis-retention`.
 * What the SSRF guard costs per new connection (bench/outbound-guard.ts) runs only as `npm run bench -- outbound`.
 * What a client spends per request by transport, stdio against HTTP clients (bench/client-floors.ts), runs only as
 * `npm run bench -- client-floors`.
 * What session-aware rules add per call (bench/session-facts.ts) runs only as `npm run bench -- session-facts`.
 * Start-up time and idle RSS of `gatehouse wrap` against the server alone (bench/startup.ts) run only as `npm run bench -- startup`.
 * Memory per held 2025 session and a call's p50 while 10,000 are held (bench/sessions.ts) run only as `npm run bench -- sessions`.
 * The poisoning scan's precision, recall and cost per definition (bench/poisoning.ts) run only as
 * `npm run bench -- poisoning`.
 * The result scanner's precision, recall and cost per 10 KB (bench/result-scan.ts) run only as `npm run bench -- result-scan`.
 * The soak, 10 minutes at 500 calls/s with denials and approvals (bench/soak.ts), runs only as `npm run bench -- soak`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLineup, type Lineup } from './lineup.ts';
import { closedLoop } from './load.ts';
import { cpuMs, installCleanup, killAll, rssMiB } from './processes.ts';
import { printReport, type Batch } from './report.ts';
import { readSettings, type Settings } from './settings.ts';
import { printKernelBench } from './kernel.ts';
import { printApprovalsBench } from './approvals.ts';
import { printDistributedBench } from './distributed.ts';
import { printAuditBench, printSealBench } from './audit.ts';
import { printAuditQueryBench } from './audit-query.ts';
import { printLargeResultBench } from './large-result.ts';
import { printMetricsBench } from './metrics.ts';
import { printConsoleBench } from './console.ts';
import { printConsolePagesBench } from './console-pages.ts';
import { printAuditSinksBench } from './audit-sinks.ts';
import { printTracesBench } from './traces.ts';
import { printPacksBench } from './packs.ts';
import { printOAuthBench } from './oauth.ts';
import { printRedisRetentionBench } from './redis-retention.ts';
import { printOutboundGuardBench } from './outbound-guard.ts';
import { printSessionFactsBench } from './session-facts.ts';
import { printStartupBench } from './startup.ts';
import { printSessionsBench } from './sessions.ts';
import { printPoisoningBench } from './poisoning.ts';
import { printResultScanBench } from './result-scan.ts';
import { printSoakBench } from './soak.ts';
import { printClientFloorsBench } from './client-floors.ts';

const started = performance.now();
const progress = (message: string) => process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(3)} s] ${message}\n`);

/** A part of the bench that `npm run bench -- <name>` runs alone. */
interface Part {
  label: string;
  run: () => unknown;
  /** It starts processes: kill them if the run is interrupted. */
  spawns?: boolean;
}

const PARTS: Record<string, Part> = {
  packs: { label: 'packs: loading and deciding with the bundled packs', run: printPacksBench },
  oauth: { label: 'checking a bearer: an API key against an OAuth access token', run: printOAuthBench },
  outbound: { label: 'the SSRF guard: a guarded new connection against a plain one', run: printOutboundGuardBench },
  'client-floors': { label: 'client floors: CPU per request by transport (stdio, undici, node:http, raw sockets)', run: printClientFloorsBench, spawns: true },
  'session-facts': { label: 'session facts, loop breakers and budgets: CPU added per call', run: printSessionFactsBench, spawns: true },
  poisoning: { label: 'the poisoning scan of tool definitions: precision, recall, cost', run: printPoisoningBench },
  'result-scan': { label: 'the result scanner: precision, recall, cost per 10 KB', run: printResultScanBench },
  'console-pages': { label: 'the console pages over a busy audit trail', run: printConsolePagesBench },
  'audit-query': { label: 'audit query over a long chain', run: printAuditQueryBench },
  audit: { label: 'the audit store, per audit.fsync mode', run: printAuditBench },
  segments: { label: 'the audit store: what sealing a segment costs', run: printSealBench },
  'redis-retention': { label: 'audit retention on a Redis chain', run: printRedisRetentionBench },
  sinks: { label: 'an audit sink on against none', run: printAuditSinksBench, spawns: true },
  large: { label: 'a large result, and the calls around it', run: largeResultBench, spawns: true },
  metrics: { label: 'metrics on against metrics off', run: printMetricsBench, spawns: true },
  traces: { label: 'traces on against off', run: printTracesBench, spawns: true },
  console: { label: 'the console: its live feed open against none', run: printConsoleBench, spawns: true },
  distributed: { label: 'distributed mode against embedded mode', run: printDistributedBench, spawns: true },
  startup: { label: 'start-up: gatehouse wrap against the server alone', run: printStartupBench, spawns: true },
  sessions: { label: 'many 2025 sessions held open in one gateway', run: printSessionsBench, spawns: true },
  soak: { label: 'the soak: a steady load with denials and approvals, RSS and descriptors watched', run: printSoakBench, spawns: true },
};

/** What the full run measures after the main table, in this order. */
const AFTER_MAIN_TABLE = ['metrics', 'traces', 'console', 'distributed'];

async function runPart(name: string): Promise<void> {
  const part = PARTS[name];
  if (part.spawns) installCleanup();
  progress(part.label);
  await part.run();
}

async function main(): Promise<void> {
  const only = (part: string) => process.argv.includes(part);
  const alone = Object.keys(PARTS).find(only);
  if (alone) return runPart(alone);
  const mainOnly = only('main');
  if (!only('approvals') && !mainOnly) {
    progress('the safety kernel, in process');
    printKernelBench();
    if (only('kernel')) return;
  }
  installCleanup();
  if (!mainOnly) {
    progress('approvals: approver clicks -> held call returns');
    await printApprovalsBench();
    if (only('approvals')) return;
  }
  const settings = readSettings();
  const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  let lineup: Lineup | undefined;
  try {
    progress('starting the servers');
    lineup = await startLineup(settings, workDir);
    const idle = await idleRss(lineup);
    await warmUp(lineup, settings);
    const { http, stdio, loads } = await measure(lineup, settings);
    const after = new Map(lineup.processes.map((p) => [p.pid, rssMiB(p.pid)]));
    printReport({
      settings,
      http: lineup.scenarios.map((s) => ({ key: s.key, label: s.label, era: s.era, runs: http.get(s.key)! })),
      stdio: lineup.stdio.map((s) => ({ key: s.key, label: s.label, runs: stdio.get(s.key)! })),
      rss: lineup.processes.map((p) => ({ label: p.label, idle: idle.get(p.pid), afterRun: after.get(p.pid) })),
      comparisons: lineup.comparisons,
      loadAverages: loads,
    });
  } finally {
    await lineup?.stop();
    killAll();
    rmSync(workDir, { recursive: true, force: true });
  }
  if (!mainOnly) for (const name of AFTER_MAIN_TABLE) await runPart(name);
}

async function largeResultBench(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  try {
    await printLargeResultBench(workDir);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** "Idle" RSS: after startup and a few calls on every target, then a quiet second. */
async function idleRss(lineup: Lineup): Promise<Map<number, number | undefined>> {
  for (const s of lineup.scenarios) await closedLoop(() => s.client.echo(s.target.tool), 20, 1);
  for (const s of lineup.stdio) await closedLoop(() => s.client.echo(s.tool), 20, 1);
  await new Promise((r) => setTimeout(r, 1000));
  return new Map(lineup.processes.map((p) => [p.pid, rssMiB(p.pid)]));
}

async function warmUp(lineup: Lineup, settings: Settings): Promise<void> {
  progress(`warming up: ${settings.warmup} calls per target, HTTP at concurrency ${Math.max(...settings.concurrency)}`);
  for (const s of lineup.scenarios) await closedLoop(() => s.client.echo(s.target.tool), settings.warmup, Math.max(...settings.concurrency));
  for (const s of lineup.stdio) await closedLoop(() => s.client.echo(s.tool), settings.warmup, 1);
}

/**
 * Interleaved rounds (A, B, C … then again), the order rotated each round: a noisy spell on the machine, or
 * the GC debt a target leaves behind, lands on a different target each time instead of always the same one.
 */
async function measure(lineup: Lineup, settings: Settings) {
  const http = new Map(lineup.scenarios.map((s) => [s.key, new Map<number, Batch[]>(settings.concurrency.map((c) => [c, []]))]));
  const stdio = new Map(lineup.stdio.map((s) => [s.key, [] as Batch[]]));
  // The machine's 1-minute load average after each batch: CPU per call and latency only compare at like loads.
  const loads: number[] = [];
  for (let round = 0; round < settings.rounds; round++) {
    for (const c of settings.concurrency) {
      for (const s of rotate(lineup.scenarios, round)) {
        const call = () => s.client.echo(s.target.tool);
        await closedLoop(call, settings.rewarm, c);
        http.get(s.key)!.get(c)!.push(await batch(s.target.pid, call, settings.calls, c));
        loads.push(loadavg()[0]);
      }
    }
    for (const s of rotate(lineup.stdio, round)) {
      const call = () => s.client.echo(s.tool);
      await closedLoop(call, settings.rewarm, 1);
      stdio.get(s.key)!.push(await batch(s.pid, call, settings.stdioCalls, 1));
      loads.push(loadavg()[0]);
    }
    progress(`round ${round + 1}/${settings.rounds} done`);
  }
  return { http, stdio, loads };
}

/** One measured batch, with the CPU the server process (and its stdio upstream, if it has one) spent on it. */
async function batch(pid: number, call: () => Promise<void>, calls: number, concurrency: number): Promise<Batch> {
  const own = cpuMs(pid);
  const tree = cpuMs(pid, true);
  const figures = await closedLoop(call, calls, concurrency);
  const perCall = (before: number | undefined, after: number | undefined) => (before === undefined || after === undefined ? undefined : ((after - before) * 1000) / calls);
  return { ...figures, cpuUs: perCall(own, cpuMs(pid)), cpuTreeUs: perCall(tree, cpuMs(pid, true)) };
}

const rotate = <T>(items: T[], by: number): T[] => items.map((_, i) => items[(i + by) % items.length]);

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`bench failed: ${err.stack ?? err}`);
    process.exit(1);
  },
);
