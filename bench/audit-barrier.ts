/**
 * The dispatch barrier at concurrency 1, in process: per call, the trail records the job's three records before
 * dispatch, waits for `written()` as the scheduler does before it publishes a job, then records the outcome (which
 * the trail writes with a later call's records). Wall time and process CPU (user + system, the thread pool's
 * included) per call, through FileAuditStore with `audit.fsync: batch` (the default) against the bare writers.
 * Rounds interleaved, medians. Env: BENCH_AUDIT_CALLS (3,000 per variant and round).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileAuditStore } from '../adapters/file/audit-store.ts';
import { ChainWriter, type AuditWriter } from '../src/audit/chain-writer.ts';
import { AuditTrail } from '../src/audit/trail.ts';
import { BareWriter } from './bare-writers.ts';
import { median } from './stats.ts';
import { decisionEvent } from './audit.ts';

const CALLS = Number(process.env.BENCH_AUDIT_CALLS ?? 3_000);
const BEFORE_DISPATCH = ['job.submitted', 'job.decided', 'job.dispatched'];

const VARIANTS = {
  'bare: chain + appendFile': (dir: string): AuditWriter => new BareWriter(join(dir, 'chain.jsonl'), 'appendFile'),
  'bare: chain + write(2) on an open file': (dir: string): AuditWriter => new BareWriter(join(dir, 'chain.jsonl'), 'write'),
  'FileAuditStore, fsync: batch': (dir: string): AuditWriter => new ChainWriter(new FileAuditStore(dir, { fsync: 'batch' })),
};
type Variant = keyof typeof VARIANTS;

async function calls(variant: Variant): Promise<{ wallUs: number; cpuUs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-barrier-'));
  const trail = new AuditTrail(VARIANTS[variant](dir));
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < CALLS; i++) {
    const jobId = `01JBARRIER${String(i).padStart(8, '0')}`;
    for (const type of BEFORE_DISPATCH) trail.record({ ...decisionEvent(jobId), type });
    await trail.written('default');
    trail.record({ ...decisionEvent(jobId), type: 'job.succeeded' });
  }
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  await trail.close();
  rmSync(dir, { recursive: true, force: true });
  return { wallUs: (wallMs * 1000) / CALLS, cpuUs: (used.user + used.system) / CALLS };
}

export async function printBarrierBench(rounds: number): Promise<void> {
  const names = Object.keys(VARIANTS) as Variant[];
  const results = new Map(names.map((v) => [v, [] as { wallUs: number; cpuUs: number }[]]));
  for (const v of names) await calls(v); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const v of names.map((_, i) => names[(i + round) % names.length])) results.get(v)!.push(await calls(v));
  }
  console.log(`\n## The dispatch barrier at concurrency 1 (${CALLS} calls of 3 records + an outcome per run, median of ${rounds} rounds)\n`);
  console.log('| writer | wall per call | CPU per call (process, thread pool included) |');
  console.log('|---|---|---|');
  for (const [v, runs] of results) console.log(`| ${v} | ${median(runs.map((r) => r.wallUs)).toFixed(0)} µs | ${median(runs.map((r) => r.cpuUs)).toFixed(0)} µs |`);
}
