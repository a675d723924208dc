/**
 * What metrics cost a governed call: two `gatehouse start`s side by side (bench/side-by-side.ts), the same allow
 * policy and stdio echo upstream, one with `metrics.enabled: true` (the default) and one with false. Reports the
 * gateway process's CPU per call, p50 and calls/s at each concurrency, and the ratio of CPU per call on/off (target
 * ≤ 1.05). The metrics side is scraped once per round, as Prometheus would, outside the measured batch.
 * Env: BENCH_METRICS_CALLS (calls per batch, 2000), BENCH_METRICS_ROUNDS (7).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAll } from './processes.ts';
import { cpuRatios, printSides, sideBySide } from './side-by-side.ts';
import { ALLOW_POLICY, startGatehouseHttp, type HttpTarget } from './targets.ts';

const TARGET_RATIO = 1.05;

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
    const figures = await sideBySide(targets, { calls, rounds, afterBatch: async (t) => (t === on && process.env.BENCH_METRICS_AA !== '1' ? scrape(on.url) : undefined) });
    console.log(`\nMetrics on vs off: governed echo call (allow, stdio upstream), HTTP 2025; ${calls} calls per batch, median of ${rounds} interleaved rounds`);
    printSides(figures, ['metrics-on', 'metrics-off']);
    const results = cpuRatios(figures, 'metrics-on', 'metrics-off');
    for (const r of results) console.log(`CPU per call, metrics on / off at c=${r.concurrency}: ${r.ratio.toFixed(3)} (target ≤ ${TARGET_RATIO}) ${r.ratio <= TARGET_RATIO ? 'PASS' : 'MISS'}`);
    console.log(JSON.stringify({ bench: 'metrics', calls, rounds, ratios: results }));
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
