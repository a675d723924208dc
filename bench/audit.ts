/**
 * `npm run bench -- audit`: what each `audit.fsync` mode costs the file audit store, against a baseline in the same
 * run. Every variant writes the same batches (BENCH_AUDIT_RECORDS records each, about what the trail gathers in its
 * 20 ms at a few hundred calls/s) one after the other, through the chain writer, to a fresh chain on this machine's
 * disk (os.tmpdir()):
 *   appendFile  the records chained and appended with one appendFile through the thread pool, nothing else
 *   write       the same with one write(2) on a file held open: the floor (bench/bare-writers.ts)
 *   off/batch/always  FileAuditStore with that mode: the lock, the check that the file still ends where the store
 *                     left it, the head file, and the fsyncs the mode makes
 * Rounds are interleaved, the order rotated each round, and each figure is the median over rounds. Then the
 * dispatch barrier at concurrency 1 (bench/audit-barrier.ts), then the parts alone: one fsync of a chain file after a small append, and one atomic write of the head file. Last, what
 * a start reads for `outcome unknown` records: a long chain after a clean stop, and a crashed run of
 * BENCH_AUDIT_RUN records (100,000).
 * Then what sealing a segment costs the append that seals it (audit.segmentBytes), with and without retention.
 * Env: BENCH_AUDIT_BATCHES (300 per variant and round), BENCH_AUDIT_RECORDS (16), BENCH_ROUNDS (3), BENCH_AUDIT_CALLS
 * (3,000 calls per variant and round of the barrier).
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileAuditStore } from '../adapters/file/audit-store.ts';
import { writeFileAtomic } from '../adapters/file/atomic-file.ts';
import { ChainWriter } from '../src/audit/chain-writer.ts';
import type { AuditEvent } from '../src/protocol/audit-record.ts';
import type { AuditFsync } from '../src/ports.ts';
import { median, percentile } from './stats.ts';
import { scanForInDoubt } from '../src/audit/run-markers.ts';
import { BareWriter } from './bare-writers.ts';
import { printBarrierBench } from './audit-barrier.ts';
import { checkpointOptions } from '../src/runtime/audit-signing.ts';
import { defaultConfig } from '../src/config/load.ts';

const BATCHES = Number(process.env.BENCH_AUDIT_BATCHES ?? 300);
const RECORDS = Number(process.env.BENCH_AUDIT_RECORDS ?? 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RUN = Number(process.env.BENCH_AUDIT_RUN ?? 100_000);

type Variant = 'appendFile' | 'write' | AuditFsync;
const VARIANTS: Variant[] = ['appendFile', 'write', 'off', 'batch', 'always'];

interface Figures {
  recordsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

/** A decision-sized record: what a governed call writes most. */
export function decisionEvent(jobId: string): AuditEvent {
  return {
    tenant: 'default',
    at: Date.now(),
    type: 'job.decided',
    actor: 'kernel',
    jobId,
    data: { effect: 'allow', ruleIds: ['read-only-tools'], policySnapshot: 'sha256:' + 'ab'.repeat(32), reason: 'read-only tool', argsDigest: 'sha256:' + 'cd'.repeat(32) },
  };
}

function events(batch: number): AuditEvent[] {
  return Array.from({ length: RECORDS }, (_, i) => decisionEvent(`01JBENCH${String(batch).padStart(8, '0')}${String(i).padStart(4, '0')}`));
}

async function run(variant: Variant): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-audit-'));
  const writer = variant === 'appendFile' || variant === 'write' ? new BareWriter(join(dir, 'chain.jsonl'), variant) : new ChainWriter(new FileAuditStore(dir, { fsync: variant }));
  const batches = Array.from({ length: BATCHES }, (_, i) => new Map([['default', events(i)]]));
  const took: number[] = [];
  const started = performance.now();
  for (const batch of batches) {
    const t = performance.now();
    await writer.write(batch);
    took.push(performance.now() - t);
  }
  // A batch mode run owes its last window's fsync: it counts, as the store's close makes it.
  await writer.close();
  const seconds = (performance.now() - started) / 1000;
  rmSync(dir, { recursive: true, force: true });
  took.sort((a, b) => a - b);
  return { recordsPerSec: (BATCHES * RECORDS) / seconds, p50Ms: percentile(took, 50), p99Ms: percentile(took, 99) };
}

/** The parts: one fsync after a small append, and one atomic head-file write (µs, p50 of 200). */
async function parts(): Promise<{ fsyncUs: number; headUs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-audit-'));
  const fsyncs: number[] = [];
  const heads: number[] = [];
  const handle = await open(join(dir, 'chain.jsonl'), 'a');
  for (let i = 0; i < 200; i++) {
    await handle.write('x'.repeat(500) + '\n');
    let t = performance.now();
    await handle.sync();
    fsyncs.push((performance.now() - t) * 1000);
    t = performance.now();
    writeFileAtomic(join(dir, 'chain.head'), JSON.stringify({ seq: i, hash: 'sha256:' + 'ef'.repeat(32) }) + '\n');
    heads.push((performance.now() - t) * 1000);
  }
  await handle.close();
  rmSync(dir, { recursive: true, force: true });
  return { fsyncUs: percentile(fsyncs.sort((a, b) => a - b), 50), headUs: percentile(heads.sort((a, b) => a - b), 50) };
}

export async function printAuditBench(): Promise<void> {
  const results = new Map<Variant, Figures[]>(VARIANTS.map((v) => [v, []]));
  await run('off'); // warm-up: module loading, the JIT, the disk
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length])) results.get(variant)!.push(await run(variant));
  }
  const summary = new Map([...results].map(([v, runs]) => [v, { recordsPerSec: median(runs.map((r) => r.recordsPerSec)), p50Ms: median(runs.map((r) => r.p50Ms)), p99Ms: median(runs.map((r) => r.p99Ms)) }]));
  const viaPool = summary.get('appendFile')!;
  const floor = summary.get('write')!;
  const ms = (x: number) => `${x.toFixed(3)} ms`;
  const labels: Record<Variant, string> = { appendFile: 'bare: chain + appendFile', write: 'bare: chain + write(2) on an open file', off: 'fsync: off', batch: 'fsync: batch', always: 'fsync: always' };
  console.log(`\n## Audit store: audit.fsync modes (${BATCHES} batches of ${RECORDS} records per run, median of ${ROUNDS} rounds, ${tmpdir()})\n`);
  console.log('| variant | records/s | batches/s | p50 per batch | p99 per batch | p50 vs appendFile | p50 vs write(2) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const variant of VARIANTS) {
    const f = summary.get(variant)!;
    console.log(
      `| ${labels[variant]} | ${Math.round(f.recordsPerSec).toLocaleString('en')} | ${Math.round(f.recordsPerSec / RECORDS).toLocaleString('en')} | ${ms(f.p50Ms)} | ${ms(f.p99Ms)} | ` +
        `${(f.p50Ms / viaPool.p50Ms).toFixed(2)}× | ${(f.p50Ms / floor.p50Ms).toFixed(2)}× |`,
    );
  }
  await printBarrierBench(ROUNDS);
  const { fsyncUs, headUs } = await parts();
  console.log(`\nParts alone (p50 of 200): one fsync of a chain file after a 500-byte append ${fsyncUs.toFixed(0)} µs; one atomic head-file write (write + rename) ${headUs.toFixed(0)} µs.`);
  await printRestartScan();
  await printSealBench();
}

/** Segments of 256 KiB (BATCHES × 4 batches, fsync batch): each batch's time, apart for the batches that sealed one. */
async function sealRun(retention: boolean): Promise<{ seals: number; plainP50: number; sealP50: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-audit-'));
  const store = new FileAuditStore(dir, { fsync: 'batch', segmentBytes: 256 * 1024, ...(retention ? { retention: { maxBytes: 1024 * 1024 } } : {}) });
  const writer = new ChainWriter(store, checkpointOptions(defaultConfig({ dataDir: dir }), { atClose: true }));
  const segments = join(dir, 'audit', 'default.segments');
  const plain: number[] = [];
  const sealing: number[] = [];
  let sealed = 0;
  for (let i = 0; i < BATCHES * 4; i++) {
    const t = performance.now();
    await writer.write(new Map([['default', events(i)]]));
    const took = performance.now() - t;
    // The newest sealed segment's name moves on with each seal (retention keeps the count level).
    const newest = existsSync(segments) ? readdirSync(segments).sort().at(-1) : undefined;
    const count = newest ? Number(newest.slice(0, 12)) : 0;
    (count !== sealed ? sealing : plain).push(took);
    sealed = count;
  }
  await writer.close();
  rmSync(dir, { recursive: true, force: true });
  return { seals: sealing.length, plainP50: percentile(plain.sort((a, b) => a - b), 50), sealP50: percentile(sealing.sort((a, b) => a - b), 50) };
}

export async function printSealBench(): Promise<void> {
  for (const retention of [false, true]) {
    const r = await sealRun(retention);
    console.log(
      `
Segments of 256 KiB${retention ? ', retention maxBytes 1 MiB' : ''} (fsync batch): ${r.seals} seals in ${BATCHES * 4} batches of ${RECORDS}; ` +
        `a batch p50 ${r.plainP50.toFixed(3)} ms, the batch that seals p50 ${r.sealP50.toFixed(3)} ms (its checkpoint, an fsync, a rename, a new file, two directory fsyncs${retention ? ', the anchor, the unlinks and audit.pruned' : ''}).`,
    );
  }
}

/** A chain of `RUN` job records after a run marker, and what reading it back for jobs in doubt takes (ms). */
async function restartScan(ending: 'gateway.stopped' | 'crash'): Promise<{ records: number; ms: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-audit-'));
  const store = new FileAuditStore(dir, { fsync: 'off' });
  const writer = new ChainWriter(store);
  const marker = (type: string): AuditEvent => ({ tenant: 'default', at: Date.now(), type, actor: 'gateway', data: { replica: 'gw-bench' } });
  await writer.write(new Map([['default', [marker('gateway.started')]]]));
  for (let i = 0; i < RUN / RECORDS; i++) await writer.write(new Map([['default', events(i).map((e, j) => ({ ...e, type: j % 2 ? 'job.succeeded' : 'job.dispatched', jobId: `${i}-${j >> 1}` }))]]));
  if (ending === 'gateway.stopped') await writer.write(new Map([['default', [marker('gateway.stopped')]]]));
  const t = performance.now();
  const scan = await scanForInDoubt(store, 'default');
  const ms = performance.now() - t;
  await writer.close();
  rmSync(dir, { recursive: true, force: true });
  return { records: scan.records, ms };
}

export async function printRestartScan(): Promise<void> {
  const clean = await restartScan('gateway.stopped');
  const crash = await restartScan('crash');
  console.log(
    `\nStart after a stop, reading back for jobs left in doubt: after a clean stop ${clean.records} record read in ${clean.ms.toFixed(1)} ms (a chain of ${RUN.toLocaleString('en')} job records behind it); ` +
      `after a crash, the crashed run's ${crash.records.toLocaleString('en')} records in ${crash.ms.toFixed(0)} ms.`,
  );
}
