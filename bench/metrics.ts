/**
 * What metrics cost a governed call: two `gatehouse start`s side by side, the same allow policy and stdio echo
 * upstream, one with `metrics.enabled: true` (the default) and one with false, driven in interleaved rounds over
 * Streamable HTTP (2025 sessions). Reports the gateway process's CPU per call (its upstream child not counted),
 * p50 and calls/s at each concurrency, and the ratio of CPU per call on/off (target ≤ 1.05). The metrics side is
 * scraped once per round, as Prometheus would, outside the measured batch.
 * Env: BENCH_METRICS_CALLS (calls per batch, 2000), BENCH_METRICS_ROUNDS (7).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { McpHttpClient } from './http-client.ts';
import { closedLoop } from './load.ts';
import { cpuMs, killAll } from './processes.ts';
import { median } from './stats.ts';
import { ALLOW_POLICY, startGatehouseHttp, type HttpTarget } from './targets.ts';

const CONCURRENCY = [1, 16];
const TARGET_RATIO = 1.05;
const TOOL = 'echo__echo';

/** One batch's figures: the gateway's CPU per call, and the load's p50 and rate. */
export interface Round {
  cpuUs: number;
  p50Ms: number;
  callsPerSec: number;
}

export async function printMetricsBench(): Promise<void> {
  const calls = Number(process.env.BENCH_METRICS_CALLS ?? 2_000);
  const rounds = Number(process.env.BENCH_METRICS_ROUNDS ?? 7);
  const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-metrics-'));
  const targets: HttpTarget[] = [];
  try {
    const [on, off] = await Promise.all([
      startGatehouseHttp('metrics-on', 'metrics on', { policy: ALLOW_POLICY, workDir, metrics: process.env.BENCH_METRICS_AA !== '1' }),
      startGatehouseHttp('metrics-off', 'metrics off', { policy: ALLOW_POLICY, workDir, metrics: false }),
    ]);
    targets.push(on, off);
    const figures = new Map<string, Round[]>();
    for (const concurrency of CONCURRENCY) {
      const clients = new Map<HttpTarget, McpHttpClient>();
      for (const t of targets) {
        const client = new McpHttpClient(t.url, 'legacy', concurrency);
        await client.connect();
        clients.set(t, client);
        await closedLoop(() => client.echo(TOOL), Math.min(1_000, calls), concurrency); // warm up
      }
      try {
        for (let round = 0; round < rounds; round++) {
          // Alternate which side goes first: a noisy spell lands on each in turn.
          for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
            const client = clients.get(t)!;
            await closedLoop(() => client.echo(TOOL), 100, concurrency);
            const before = cpuMs(t.pid);
            const load = await closedLoop(() => client.echo(TOOL), calls, concurrency);
            const after = cpuMs(t.pid);
            if (before === undefined || after === undefined) throw new Error('cannot read the CPU time of the gateway process');
            const key = `${t.key}@${concurrency}`;
            figures.set(key, [...(figures.get(key) ?? []), { cpuUs: ((after - before) * 1000) / calls, p50Ms: load.p50Ms, callsPerSec: load.callsPerSec }]);
            if (t === on && process.env.BENCH_METRICS_AA !== '1') await scrape(on.url);
          }
        }
      } finally {
        await Promise.all([...clients.values()].map((c) => c.close()));
      }
    }
    printTable(figures, calls, rounds);
  } finally {
    await Promise.allSettled(targets.map((t) => t.stop()));
    killAll();
    rmSync(workDir, { recursive: true, force: true });
  }
}

async function scrape(mcpUrl: string): Promise<void> {
  const response = await fetch(mcpUrl.replace(/\/mcp$/, '/metrics'));
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  await response.text();
}

function printTable(figures: Map<string, Round[]>, calls: number, rounds: number): void {
  const med = (key: string, pick: (r: Round) => number) => median(figures.get(key)!.map(pick));
  console.log(`\nMetrics on vs off: governed echo call (allow, stdio upstream), HTTP 2025; ${calls} calls per batch, median of ${rounds} interleaved rounds`);
  console.log('concurrency | side        | CPU µs/call | p50 ms | calls/s');
  const results: { concurrency: number; ratio: number }[] = [];
  for (const c of CONCURRENCY) {
    for (const side of ['metrics-on', 'metrics-off']) {
      const key = `${side}@${c}`;
      console.log(`${String(c).padStart(11)} | ${side.padEnd(11)} | ${med(key, (r) => r.cpuUs).toFixed(0).padStart(11)} | ${med(key, (r) => r.p50Ms).toFixed(3).padStart(6)} | ${med(key, (r) => r.callsPerSec).toFixed(0).padStart(7)}`);
    }
    // The ratio of the medians: per-round ratios pair batches that ran at different moments anyway.
    results.push({ concurrency: c, ratio: med(`metrics-on@${c}`, (r) => r.cpuUs) / med(`metrics-off@${c}`, (r) => r.cpuUs) });
  }
  for (const r of results) console.log(`CPU per call, metrics on / off at c=${r.concurrency}: ${r.ratio.toFixed(3)} (target ≤ ${TARGET_RATIO}) ${r.ratio <= TARGET_RATIO ? 'PASS' : 'MISS'}`);
  console.log(JSON.stringify({ bench: 'metrics', calls, rounds, ratios: results }));
}
