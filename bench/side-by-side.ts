/**
 * Two gateway processes that differ in one feature, driven side by side: the same echo call over Streamable HTTP
 * (2025 sessions) in interleaved rounds, which side goes first alternating, at each concurrency. Measures the
 * gateway process's CPU per call (its upstream child not counted), p50 and calls/s, and prints the medians and
 * the ratio of CPU per call, feature on over off. Used by `npm run bench -- metrics` and `-- sinks`.
 */
import { McpHttpClient } from './http-client.ts';
import { closedLoop } from './load.ts';
import { cpuMs } from './processes.ts';
import { median } from './stats.ts';
import type { HttpTarget } from './targets.ts';

export const CONCURRENCY = [1, 16];
const TOOL = 'echo__echo';

/** One batch's figures: the gateway's CPU per call, and the load's p50 and rate. */
export interface Round {
  cpuUs: number;
  p50Ms: number;
  callsPerSec: number;
}

export interface SideBySide {
  /** What the table is called, and what the ratio compares (`metrics on / off`). */
  title: string;
  ratioLabel: string;
  on: HttpTarget;
  off: HttpTarget;
  calls: number;
  rounds: number;
  /** The most the ratio may be; past it the line says MISS (reported, never fatal). Without one, only reported. */
  targetRatio?: number;
  /** Runs after each measured batch of the `on` side, outside the measurement (a scrape, for instance). */
  afterOnBatch?: () => Promise<void>;
}

/** Measures both sides and prints the table; resolves to the CPU ratio at each concurrency. */
export async function runSideBySide(bench: SideBySide): Promise<{ concurrency: number; ratio: number }[]> {
  const { on, off, calls, rounds } = bench;
  const targets = [on, off];
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
          if (t === on) await bench.afterOnBatch?.();
        }
      }
    } finally {
      await Promise.all([...clients.values()].map((c) => c.close()));
    }
  }
  return printTable(bench, figures);
}

function printTable(bench: SideBySide, figures: Map<string, Round[]>): { concurrency: number; ratio: number }[] {
  const med = (key: string, pick: (r: Round) => number) => median(figures.get(key)!.map(pick));
  const width = Math.max(4, bench.on.key.length, bench.off.key.length);
  console.log(`\n${bench.title}; ${bench.calls} calls per batch, median of ${bench.rounds} interleaved rounds`);
  console.log(`concurrency | ${'side'.padEnd(width)} | CPU µs/call | p50 ms | calls/s`);
  const results: { concurrency: number; ratio: number }[] = [];
  for (const c of CONCURRENCY) {
    for (const side of [bench.on.key, bench.off.key]) {
      const key = `${side}@${c}`;
      console.log(`${String(c).padStart(11)} | ${side.padEnd(width)} | ${med(key, (r) => r.cpuUs).toFixed(0).padStart(11)} | ${med(key, (r) => r.p50Ms).toFixed(3).padStart(6)} | ${med(key, (r) => r.callsPerSec).toFixed(0).padStart(7)}`);
    }
    // The ratio of the medians: per-round ratios pair batches that ran at different moments anyway.
    results.push({ concurrency: c, ratio: med(`${bench.on.key}@${c}`, (r) => r.cpuUs) / med(`${bench.off.key}@${c}`, (r) => r.cpuUs) });
  }
  for (const r of results) {
    const verdict = bench.targetRatio === undefined ? '' : ` (target ≤ ${bench.targetRatio}) ${r.ratio <= bench.targetRatio ? 'PASS' : 'MISS'}`;
    console.log(`CPU per call, ${bench.ratioLabel} at c=${r.concurrency}: ${r.ratio.toFixed(3)}${verdict}`);
  }
  return results;
}
