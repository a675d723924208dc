/**
 * The soak: `gatehouse start` (embedded, stdio echo upstream) under a steady open-loop load for a long time, with
 * denials and approvals mixed in. It watches the gateway's RSS and open file descriptors every few seconds and
 * verifies the audit chain at the end with `gatehouse audit verify`. Targets: RSS after warm-up grows by at most
 * 10%, descriptors stay flat, the chain verifies.
 * Env: BENCH_SOAK_SECONDS (600), BENCH_SOAK_RATE (500 calls/s), BENCH_SOAK_WARMUP_SECONDS (120: the JIT and the
 * heap's size settle), BENCH_SOAK_DENY_EVERY (20: one call in 20 is denied), BENCH_SOAK_APPROVAL_PAUSE_MS (500
 * between approvals).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { measureApprovalRoundTrips } from './approvals.ts';
import { McpHttpClient } from './http-client.ts';
import { pacedLoop } from './load.ts';
import { rssMiB } from './processes.ts';
import { percentile } from './stats.ts';
import { GATEHOUSE, ROOT, startGatehouseHttp } from './targets.ts';

const SOAK_POLICY = resolve(import.meta.dirname, 'policies/soak.yaml');
const SAMPLE_EVERY_MS = 5_000;
const RSS_GROWTH_TARGET = 0.1;

const envNumber = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
};

interface Sample {
  atS: number;
  rssMiB: number;
  fds: number;
  /** V8's heap (reserved and live) and memory outside it, from the gateway's /metrics: what RSS is made of. */
  heap?: { totalMiB: number; usedMiB: number; externalMiB: number };
}

const HEAP_METRICS = { totalMiB: 'nodejs_heap_size_total_bytes', usedMiB: 'nodejs_heap_size_used_bytes', externalMiB: 'nodejs_external_memory_bytes' } as const;

/** The heap figures of a /metrics text; undefined when metrics are off. */
async function heapOf(metricsUrl: string): Promise<Sample['heap']> {
  const text = await fetch(metricsUrl).then((r) => (r.ok ? r.text() : ''), () => '');
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]) / 2 ** 20;
  const heap = { totalMiB: read(HEAP_METRICS.totalMiB), usedMiB: read(HEAP_METRICS.usedMiB), externalMiB: read(HEAP_METRICS.externalMiB) };
  return Number.isFinite(heap.totalMiB) ? heap : undefined;
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export async function printSoakBench(): Promise<void> {
  const seconds = envNumber('BENCH_SOAK_SECONDS', 600);
  const rate = envNumber('BENCH_SOAK_RATE', 500);
  const warmupS = Math.min(envNumber('BENCH_SOAK_WARMUP_SECONDS', 120), seconds / 2);
  const denyEvery = Math.round(envNumber('BENCH_SOAK_DENY_EVERY', 20));
  const approvalPauseMs = envNumber('BENCH_SOAK_APPROVAL_PAUSE_MS', 500);
  const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-soak-'));
  const key = 'gatehouse-soak';
  const gatehouse = await startGatehouseHttp(key, 'Gatehouse under a steady load', { policy: SOAK_POLICY, workDir });
  const samples: Sample[] = [];
  const started = performance.now();
  const metricsUrl = gatehouse.url.replace(/\/mcp$/, '/metrics');
  const sample = () => {
    const taken: Sample = { atS: (performance.now() - started) / 1000, rssMiB: rssMiB(gatehouse.pid) ?? NaN, fds: openFds(gatehouse.pid) };
    samples.push(taken);
    void heapOf(metricsUrl).then((heap) => heap && (taken.heap = heap));
  };
  const sampler = setInterval(sample, SAMPLE_EVERY_MS);
  const client = new McpHttpClient(gatehouse.url, 'legacy', 16);
  const outcomes = { allowed: 0, denied: 0, failed: 0 };
  const failures = new Map<string, number>();
  let running = true;
  try {
    await client.connect();
    sample();
    const calls = Math.round(seconds * rate);
    let sent = 0;
    const call = async () => {
      const deny = ++sent % denyEvery === 0;
      try {
        await client.call(gatehouse.tool, deny ? '{"text":"deny this one"}' : '{"text":"hi"}');
        outcomes[deny ? 'failed' : 'allowed']++;
      } catch (err) {
        const message = (err as Error).message;
        if (deny && /GH_ERR_POLICY_DENIED/.test(message)) outcomes.denied++;
        else {
          outcomes.failed++;
          const kind = message.slice(0, 200);
          failures.set(kind, (failures.get(kind) ?? 0) + 1);
        }
      }
    };
    // One approver's client for the whole soak: a client per approval would leave a session behind each time.
    const approving = measureApprovalRoundTrips(gatehouse.url, gatehouse.tool, Number.POSITIVE_INFINITY, {}, { pauseMs: approvalPauseMs, stop: () => !running });
    const load = await pacedLoop(call, calls, rate);
    running = false;
    const approvalTrips = Float64Array.from((await approving).map((t) => t.clickToResultMs)).sort();
    sample();
    clearInterval(sampler);
    await gatehouse.stop();
    const verify = await promisify(execFile)(process.execPath, [GATEHOUSE, 'audit', 'verify', '--config', join(workDir, `${key}.yaml`)], { cwd: ROOT }).then(
      (r) => ({ ok: true, text: r.stdout.trim() }),
      (err: { stdout?: string; stderr?: string }) => ({ ok: false, text: `${err.stdout ?? ''}${err.stderr ?? ''}`.trim() }),
    );
    report({ seconds, rate, warmupS, samples, load, outcomes, approvals: approvalTrips.length, approvalTrips, verify, failures });
  } finally {
    running = false;
    clearInterval(sampler);
    await client.close().catch(() => undefined);
    await gatehouse.stop().catch(() => undefined);
    rmSync(workDir, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : NaN;
}

function report(r: {
  seconds: number;
  rate: number;
  warmupS: number;
  samples: Sample[];
  load: { p50Ms: number; p99Ms: number; callsPerSec: number };
  outcomes: { allowed: number; denied: number; failed: number };
  approvals: number;
  approvalTrips: Float64Array;
  verify: { ok: boolean; text: string };
  failures: Map<string, number>;
}): void {
  const afterWarmup = r.samples.filter((s) => s.atS >= r.warmupS);
  // RSS swings with the collector's timing: compare the median of a window just after warm-up with the last one.
  const windowS = Math.min(60, (r.seconds - r.warmupS) / 4);
  const base = median(afterWarmup.filter((s) => s.atS < r.warmupS + windowS).map((s) => s.rssMiB));
  const end = median(afterWarmup.filter((s) => s.atS > r.seconds - windowS).map((s) => s.rssMiB));
  const peakRss = Math.max(...afterWarmup.map((s) => s.rssMiB));
  const growth = (end - base) / base;
  const fds = afterWarmup.map((s) => s.fds);
  // Flat means no growth. Descriptors open for a moment (a file being written, a lock, the audit chain's kept lock,
  // a connection) come and go in any sample, so what a leak would raise is the floor: the fewest open in the second
  // half of the run against the first half.
  const half = Math.floor(afterWarmup.length / 2);
  const floorOf = (window: Sample[]) => Math.min(...window.map((s) => s.fds));
  const firstFds = floorOf(afterWarmup.slice(0, half));
  const lastFds = floorOf(afterWarmup.slice(half));
  const fdsFlat = lastFds <= firstFds + 1;
  const ok = (met: boolean) => (met ? 'ok' : 'MISSED');
  console.log(`\nSoak: ${r.seconds} s at ${r.rate} calls/s (gatehouse start, stdio echo upstream; 1 in ${Math.round((r.outcomes.allowed + r.outcomes.denied + r.outcomes.failed) / Math.max(1, r.outcomes.denied))} calls denied, approvals approved over the API one after another)`);
  console.log(`  calls: ${r.outcomes.allowed} allowed, ${r.outcomes.denied} denied, ${r.outcomes.failed} failed; ${r.approvals} approvals; ${r.load.callsPerSec.toFixed(0)} calls/s reached, p50 ${r.load.p50Ms.toFixed(2)} ms, p99 ${r.load.p99Ms.toFixed(2)} ms`);
  for (const [message, count] of r.failures) console.log(`  failed ${count}x: ${message}`);
  if (r.approvalTrips.length) console.log(`  approvals: click -> result p50 ${percentile(r.approvalTrips, 50).toFixed(2)} ms, p99 ${percentile(r.approvalTrips, 99).toFixed(2)} ms`);
  console.log(`  RSS: ${r.samples[0].rssMiB.toFixed(1)} MiB at start, ${base.toFixed(1)} MiB just after the ${r.warmupS} s warm-up, ${end.toFixed(1)} MiB at the end (medians over ${Math.round(windowS)} s; peak ${peakRss.toFixed(1)}): ${(growth * 100).toFixed(1)}% growth   target <= ${RSS_GROWTH_TARGET * 100}%: ${ok(growth <= RSS_GROWTH_TARGET)}`);
  console.log(`  open file descriptors after warm-up: ${Math.min(...fds)}..${Math.max(...fds)}; fewest ${firstFds} in the first half, ${lastFds} in the second   target flat (the floor no more than one higher): ${ok(fdsFlat)}`);
  console.log(`  audit chain: ${r.verify.text.split('\n').slice(-1)[0]}   target verifies: ${ok(r.verify.ok)}`);
  const minutes = r.samples.filter((s, i) => i === 0 || Math.floor(s.atS / 60) !== Math.floor(r.samples[i - 1].atS / 60));
  console.log(`  by minute: ${minutes.map((s) => `${Math.round(s.atS)} s ${s.rssMiB.toFixed(0)} MiB/${s.fds} fds`).join(', ')}`);
  const heaps = minutes.filter((s) => s.heap);
  if (heaps.length) console.log(`  heap by minute (V8 reserved / live, external): ${heaps.map((s) => `${Math.round(s.atS)} s ${s.heap!.totalMiB.toFixed(0)}/${s.heap!.usedMiB.toFixed(0)}, ${s.heap!.externalMiB.toFixed(0)} MiB`).join('; ')}`);
}
