/**
 * What an open console costs the calls: one `gatehouse start` (allow policy, stdio echo upstream) driven at a fixed
 * rate (BENCH_CONSOLE_RATE, 1,000 calls/s) over Streamable HTTP, in interleaved rounds with the Activity feed's
 * event stream open (one SSE client reading every update) and with none. Reports the gateway process's CPU per
 * call (its upstream child not counted) each way, and the ratio open / none (issue 12's target: ≤ 1.05).
 * Env: BENCH_CONSOLE_CALLS (calls per batch, 3000), BENCH_CONSOLE_ROUNDS (7), BENCH_CONSOLE_RATE (1000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { McpHttpClient } from './http-client.ts';
import { pacedLoop } from './load.ts';
import { cpuMs, killAll } from './processes.ts';
import { median } from './stats.ts';
import type { Round } from './side-by-side.ts';
import { ALLOW_POLICY, startGatehouseHttp } from './targets.ts';

const TARGET_RATIO = 1.05;
const TOOL = 'echo__echo';
/** Calls outstanding at most: where the machine cannot keep the rate, the load waits rather than queueing without bound. */
const MAX_IN_FLIGHT = 32;

interface ConsoleRound extends Round {
  /** Call updates the feed delivered during the batch (open side only). */
  delivered?: number;
}

/** The Activity feed's event stream, read to the end like a browser would, counting the calls it carries. */
async function openFeed(base: string): Promise<{ delivered(): number; close(): void }> {
  const abort = new AbortController();
  const response = await fetch(`${base}/activity/stream`, { signal: abort.signal, headers: { accept: 'text/event-stream' } });
  if (response.status !== 200) throw new Error(`GET /activity/stream answered ${response.status}`);
  let calls = 0;
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body!) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const data = buffer.slice(0, end).split('\n').find((l) => l.startsWith('data:'));
        buffer = buffer.slice(end + 2);
        if (data) calls += (JSON.parse(data.slice(5)) as unknown[]).length;
      }
    }
  })().catch(() => undefined);
  return {
    delivered: () => calls,
    close: () => {
      abort.abort();
      void reading;
    },
  };
}

export async function printConsoleBench(): Promise<void> {
  const calls = Number(process.env.BENCH_CONSOLE_CALLS ?? 3_000);
  const rounds = Number(process.env.BENCH_CONSOLE_ROUNDS ?? 7);
  const rate = Number(process.env.BENCH_CONSOLE_RATE ?? 1_000);
  const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-console-'));
  const target = await startGatehouseHttp('console', 'console', { policy: ALLOW_POLICY, workDir });
  const client = new McpHttpClient(target.url, 'legacy', 64);
  try {
    await client.connect();
    await pacedLoop(() => client.echo(TOOL), Math.min(2_000, calls), rate, MAX_IN_FLIGHT); // warm up
    const figures: Record<'open' | 'none', ConsoleRound[]> = { open: [], none: [] };
    for (let round = 0; round < rounds; round++) {
      // Alternate which side goes first: a noisy spell lands on each in turn.
      for (const side of round % 2 === 0 ? (['open', 'none'] as const) : (['none', 'open'] as const)) {
        const feed = side === 'open' ? await openFeed(target.url.replace(/\/mcp$/, '')) : undefined;
        await new Promise((resolve) => setTimeout(resolve, 300)); // the backlog sent, the tail started
        const already = feed?.delivered() ?? 0;
        const before = cpuMs(target.pid);
        const load = await pacedLoop(() => client.echo(TOOL), calls, rate, MAX_IN_FLIGHT);
        const after = cpuMs(target.pid);
        if (before === undefined || after === undefined) throw new Error('cannot read the CPU time of the gateway process');
        await new Promise((resolve) => setTimeout(resolve, 500)); // the last flush
        figures[side].push({ cpuUs: ((after - before) * 1000) / calls, p50Ms: load.p50Ms, callsPerSec: load.callsPerSec, ...(feed ? { delivered: feed.delivered() - already } : {}) });
        feed?.close();
      }
    }
    printTable(figures, calls, rounds, rate);
  } finally {
    await client.close().catch(() => undefined);
    await target.stop();
    killAll();
    rmSync(workDir, { recursive: true, force: true });
  }
}

function printTable(figures: Record<'open' | 'none', ConsoleRound[]>, calls: number, rounds: number, rate: number): void {
  const med = (side: 'open' | 'none', pick: (r: ConsoleRound) => number) => median(figures[side].map(pick));
  console.log(`\nConsole open vs none: governed echo call (allow, stdio upstream), HTTP 2025, paced at ${rate} calls/s; ${calls} calls per batch, median of ${rounds} interleaved rounds`);
  console.log('side            | CPU µs/call | p50 ms | calls/s | feed updates/batch');
  for (const side of ['open', 'none'] as const) {
    const label = side === 'open' ? 'one console open' : 'no console';
    console.log(`${label.padEnd(15)} | ${med(side, (r) => r.cpuUs).toFixed(0).padStart(11)} | ${med(side, (r) => r.p50Ms).toFixed(3).padStart(6)} | ${med(side, (r) => r.callsPerSec).toFixed(0).padStart(7)} | ${side === 'open' ? med(side, (r) => r.delivered ?? 0).toFixed(0) : '-'}`);
  }
  const ratio = med('open', (r) => r.cpuUs) / med('none', (r) => r.cpuUs);
  console.log(`CPU per call, one console open / none: ${ratio.toFixed(3)} (target ≤ ${TARGET_RATIO}) ${ratio <= TARGET_RATIO ? 'PASS' : 'MISS'}`);
  console.log(JSON.stringify({ bench: 'console', calls, rounds, rate, ratio }));
}
