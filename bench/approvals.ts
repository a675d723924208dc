/**
 * An approval's round trip, as the approver sees it: from the moment the approver's POST /api/approvals/:id/approve
 * leaves (a click on the page posts the same decision) to the moment the held call's result reaches the client.
 * `gatehouse start` in its own process (embedded mode: approvals in the data dir), a stdio echo upstream, and a
 * real MCP SDK client over Streamable HTTP that sends a progress token, so the gateway holds each call; the
 * approval's id comes from the first progress notification, as a client would show it. Each call has its own
 * arguments, so each is a fresh approval. Env: BENCH_APPROVALS (500 round trips), BENCH_APPROVALS_WARMUP (1000).
 *
 * The client runs in the bench's own process, whose garbage collections are not the gateway's latency: it
 * collects its young garbage while the call is held, before the POST leaves (see `collectOwnGarbage`), and reports
 * how much of its own GC still landed inside the timed trips.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startGatehouseHttp } from './targets.ts';
import { percentile } from './stats.ts';

const APPROVAL_POLICY = resolve(import.meta.dirname, 'policies/approval.yaml');
const TARGET_P99_MS = 5;
/** What the bench's process allocates in a few trips: less room than this left in the young generation, it is collected. */
const YOUNG_ROOM_BYTES = 4 * 1024 * 1024;

export interface ApprovalRoundTrip {
  /** POST approve sent → the held call's result received (ms). */
  clickToResultMs: number;
  /** POST approve sent → its 200 answer received (ms). */
  clickToAnswerMs: number;
  /** How long the bench's own process was paused by its garbage collector within the trip (ms): the client's, not the gateway's. */
  ownGcMs: number;
}

/**
 * Collects the bench process's own garbage while a call is held, before its POST leaves, so that the client's
 * collections fall between trips: young garbage once the young generation has less room left than a few trips
 * take (collecting it on every trip only moved live objects into the old generation sooner, and brought its
 * collections into the trips), and all of it every 100th trip. Without it, the bench's own scavenges (one every
 * ~40 trips, 10–25 ms each at load 4–7 on the 2-core machine, longer than a whole trip) landed inside 1–2% of the
 * timed trips, as many as a p99 looks at: the client's time, counted as the gateway's.
 */
function ownGarbageCollector(): (turn: number) => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
  return (turn) => {
    if (turn % 100 === 0) return gc({ type: 'major' });
    const young = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
    if (young && young.space_available_size < YOUNG_ROOM_BYTES) gc({ type: 'minor' });
  };
}

/** The bench process's own GC pauses, from now until `stop`, to be set against the timed trips. */
function watchOwnGc(): { pauses: PerformanceEntry[]; stop(): void } {
  const pauses: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => pauses.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  return { pauses, stop: () => observer.disconnect() };
}

/** How much of [from, to] (performance.now() ms) the pauses cover. */
export function pausedWithin(pauses: readonly Pick<PerformanceEntry, 'startTime' | 'duration'>[], from: number, to: number): number {
  let ms = 0;
  for (const p of pauses) ms += Math.max(0, Math.min(to, p.startTime + p.duration) - Math.max(from, p.startTime));
  return ms;
}

/**
 * Runs `count` approval round trips against a Gatehouse at `url` (its /mcp endpoint) whose policy requires an
 * approval for `tool`, approving each through the HTTP API. `headers` authenticate the approver (none when the
 * gateway serves the local user); the MCP client sends them too. `pace` spaces the trips and ends them early (the soak's steady trickle).
 */
export async function measureApprovalRoundTrips(
  url: string,
  tool: string,
  count: number,
  headers: Record<string, string> = {},
  pace: { pauseMs?: number; stop?: () => boolean; /** Collect the bench process's own garbage before each POST (not in the soak, whose load loop shares the process). */ collectOwnGarbage?: boolean } = {},
): Promise<ApprovalRoundTrip[]> {
  const client = new Client({ name: 'gatehouse-bench-approvals', version: '1.0.0' }, { capabilities: {} });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  const api = url.replace(/\/mcp$/, '/api/approvals');
  const trips: ApprovalRoundTrip[] = [];
  const spans: Array<[number, number]> = [];
  const collect = pace.collectOwnGarbage ? ownGarbageCollector() : undefined;
  const ownGc = watchOwnGc();
  try {
    for (let i = 0; i < count && !pace.stop?.(); i++) {
      let announced!: (id: string) => void;
      const approvalId = new Promise<string>((resolve) => (announced = resolve));
      const call = client.callTool({ name: tool, arguments: { text: `approval round trip ${i} ${Date.now()}` } }, {
        onprogress: (p: { message?: string }) => {
          const id = /\b(apr_[0-9A-Za-z]+)/.exec(p.message ?? '')?.[1];
          if (id) announced(id);
        },
      } as never);
      const id = await Promise.race([approvalId, call.then((r) => Promise.reject(new Error(`the call was not held: ${JSON.stringify(r.content)}`)))]);
      collect?.(i);
      const sent = performance.now();
      const answer = await fetch(`${api}/${id}/approve`, { method: 'POST', headers });
      const answered = performance.now();
      if (answer.status !== 200) throw new Error(`approve answered ${answer.status}: ${await answer.text()}`);
      const result = await call;
      const returned = performance.now();
      if (result.isError) throw new Error(`the approved call failed: ${JSON.stringify(result.content)}`);
      trips.push({ clickToResultMs: returned - sent, clickToAnswerMs: answered - sent, ownGcMs: 0 });
      spans.push([sent, returned]);
      if (pace.pauseMs) await new Promise((resolve) => setTimeout(resolve, pace.pauseMs));
    }
  } finally {
    await client.close();
    // The observer hears of each pause a moment after it: the close gave it that moment.
    ownGc.stop();
  }
  trips.forEach((trip, i) => (trip.ownGcMs = pausedWithin(ownGc.pauses, ...spans[i])));
  return trips;
}

const envInt = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer`);
  return value;
};

/** Starts a Gatehouse that gates the echo tool behind approvals, measures, and prints the figures against the target. */
export async function printApprovalsBench(): Promise<void> {
  const count = envInt('BENCH_APPROVALS', 500);
  // Long enough for V8 to have optimized the approval path: after 20, the p50 was 1.7 times its settled value.
  const warmup = envInt('BENCH_APPROVALS_WARMUP', 1_000);
  const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-approvals-'));
  const gatehouse = await startGatehouseHttp('gatehouse-approvals', 'Gatehouse, every call approved over the API', { policy: APPROVAL_POLICY, workDir });
  try {
    await measureApprovalRoundTrips(gatehouse.url, gatehouse.tool, warmup, {}, { collectOwnGarbage: true });
    const trips = await measureApprovalRoundTrips(gatehouse.url, gatehouse.tool, count, {}, { collectOwnGarbage: true });
    const sorted = (pick: (t: ApprovalRoundTrip) => number) => Float64Array.from(trips.map(pick)).sort();
    const result = sorted((t) => t.clickToResultMs);
    const answer = sorted((t) => t.clickToAnswerMs);
    const ms = (value: number) => `${value.toFixed(2).padStart(7)} ms`;
    const p99 = percentile(result, 99);
    console.log(`\nApprovals: approver clicks -> held call returns (embedded: gatehouse start, stdio echo upstream; ${count} round trips after ${warmup} warm-up, SDK client over HTTP)`);
    console.log('                                        p50         p99         max');
    console.log(`  POST approve -> held call's result ${ms(percentile(result, 50))} ${ms(p99)} ${ms(result[result.length - 1])}   target p99 <= ${TARGET_P99_MS} ms: ${p99 <= TARGET_P99_MS ? 'ok' : 'MISSED'}`);
    console.log(`  POST approve -> its own answer     ${ms(percentile(answer, 50))} ${ms(percentile(answer, 99))} ${ms(answer[answer.length - 1])}`);
    const paused = trips.filter((t) => t.ownGcMs > 0);
    console.log(`  the bench's own GC inside timed trips: ${paused.length} of ${count} (${paused.reduce((sum, t) => sum + t.ownGcMs, 0).toFixed(2)} ms in all)`);
  } finally {
    await gatehouse.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}
