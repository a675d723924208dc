/**
 * Gatehouse processes that differ in one setting, driven side by side in interleaved rounds over Streamable HTTP
 * (2025 sessions) with the same governed echo call: each batch's figure is the gateway process's CPU per call (its
 * upstream child not counted), p50 and calls/s. What metrics and traces cost a call is measured this way.
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

/** Figures by `<target key>@<concurrency>`, one per round. `afterBatch` runs outside the measured batch. */
export async function sideBySide(targets: readonly HttpTarget[], options: { calls: number; rounds: number; afterBatch?: (target: HttpTarget) => Promise<void> }): Promise<Map<string, Round[]>> {
  const { calls, rounds } = options;
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
        // Rotate which side goes first: a noisy spell lands on each in turn.
        const order = targets.map((_, i) => targets[(i + round) % targets.length]);
        for (const t of order) {
          const client = clients.get(t)!;
          await closedLoop(() => client.echo(TOOL), 100, concurrency);
          const before = cpuMs(t.pid);
          const load = await closedLoop(() => client.echo(TOOL), calls, concurrency);
          const after = cpuMs(t.pid);
          if (before === undefined || after === undefined) throw new Error('cannot read the CPU time of the gateway process');
          const key = `${t.key}@${concurrency}`;
          figures.set(key, [...(figures.get(key) ?? []), { cpuUs: ((after - before) * 1000) / calls, p50Ms: load.p50Ms, callsPerSec: load.callsPerSec }]);
          await options.afterBatch?.(t);
        }
      }
    } finally {
      await Promise.all([...clients.values()].map((c) => c.close()));
    }
  }
  return figures;
}

/** The median of one figure of a side at a concurrency. */
export const medianOf = (figures: Map<string, Round[]>, key: string, pick: (r: Round) => number): number => median(figures.get(key)!.map(pick));

/** One row per side and concurrency: CPU µs per call, p50 and calls/s, medians over the rounds. */
export function printSides(figures: Map<string, Round[]>, sides: readonly string[]): void {
  const width = Math.max(11, ...sides.map((s) => s.length));
  console.log(`concurrency | ${'side'.padEnd(width)} | CPU µs/call | p50 ms | calls/s`);
  for (const c of CONCURRENCY) {
    for (const side of sides) {
      const key = `${side}@${c}`;
      console.log(`${String(c).padStart(11)} | ${side.padEnd(width)} | ${medianOf(figures, key, (r) => r.cpuUs).toFixed(0).padStart(11)} | ${medianOf(figures, key, (r) => r.p50Ms).toFixed(3).padStart(6)} | ${medianOf(figures, key, (r) => r.callsPerSec).toFixed(0).padStart(7)}`);
    }
  }
}

/** CPU per call of `side` over `baseline` at each concurrency: the ratio of the medians (per-round ratios pair batches that ran at different moments anyway). */
export function cpuRatios(figures: Map<string, Round[]>, side: string, baseline: string): { concurrency: number; ratio: number }[] {
  return CONCURRENCY.map((c) => ({ concurrency: c, ratio: medianOf(figures, `${side}@${c}`, (r) => r.cpuUs) / medianOf(figures, `${baseline}@${c}`, (r) => r.cpuUs) }));
}
