/**
 * `npm run bench -- audit`: what each `audit.fsync` mode costs the file audit store, against a baseline in the same
 * run. Every variant writes the same batches (BENCH_AUDIT_RECORDS records each, about what the trail gathers in its
 * 20 ms at a few hundred calls/s) one after the other, through the chain writer, to a fresh chain on this machine's
 * disk (os.tmpdir()):
 *   baseline    the records chained and appended with one appendFile, nothing else (the bare write)
 *   off/batch/always  FileAuditStore with that mode: the lock, the check that the file still ends where the store
 *                     left it, the head file, and the fsyncs the mode makes
 * Rounds are interleaved, the order rotated each round, and each figure is the median over rounds. Then the
 * parts alone: one fsync of a chain file after a small append, and one atomic write of the head file. Last, what
 * a start reads for `outcome unknown` records: a long chain after a clean stop, and a crashed run of
 * BENCH_AUDIT_RUN records (100,000).
 * Env: BENCH_AUDIT_BATCHES (300 per variant and round), BENCH_AUDIT_RECORDS (16), BENCH_ROUNDS (3).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { appendFile, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileAuditStore } from '../adapters/file/audit-store.ts';
import { writeFileAtomic } from '../adapters/file/atomic-file.ts';
import { ChainWriter, type AuditWriter } from '../src/audit/chain-writer.ts';
import { chainEvents, recordLine } from '../src/protocol/audit-chain.ts';
import { GENESIS, type AuditEvent, type ChainHead } from '../src/protocol/audit-record.ts';
import type { AuditFsync } from '../src/ports.ts';
import { median, percentile } from './stats.ts';
import { scanForInDoubt } from '../src/audit/run-markers.ts';

const BATCHES = Number(process.env.BENCH_AUDIT_BATCHES ?? 300);
const RECORDS = Number(process.env.BENCH_AUDIT_RECORDS ?? 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RUN = Number(process.env.BENCH_AUDIT_RUN ?? 100_000);

type Variant = 'baseline' | AuditFsync;
const VARIANTS: Variant[] = ['baseline', 'off', 'batch', 'always'];

interface Figures {
  recordsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

/** A decision-sized record: what a governed call writes most. */
function events(batch: number): AuditEvent[] {
  return Array.from({ length: RECORDS }, (_, i) => ({
    tenant: 'default',
    at: Date.now(),
    type: 'job.decided',
    actor: 'kernel',
    jobId: `01JBENCH${String(batch).padStart(8, '0')}${String(i).padStart(4, '0')}`,
    data: { effect: 'allow', ruleIds: ['read-only-tools'], policySnapshot: 'sha256:' + 'ab'.repeat(32), reason: 'read-only tool', argsDigest: 'sha256:' + 'cd'.repeat(32) },
  }));
}

/** The bare write: chain the events onto the head this writer keeps, one appendFile. */
class BareWriter implements AuditWriter {
  private head: ChainHead = GENESIS;
  constructor(private readonly path: string) {}
  async write(batch: ReadonlyMap<string, readonly AuditEvent[]>): Promise<void> {
    for (const events of batch.values()) {
      const records = chainEvents(this.head, events);
      await appendFile(this.path, records.map(recordLine).join('\n') + '\n');
      const last = records[records.length - 1];
      this.head = { seq: last.seq, hash: last.hash };
    }
  }
  async close(): Promise<void> {}
}

async function run(variant: Variant): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-audit-'));
  const writer = variant === 'baseline' ? new BareWriter(join(dir, 'chain.jsonl')) : new ChainWriter(new FileAuditStore(dir, { fsync: variant }));
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
  const base = summary.get('baseline')!;
  const ms = (x: number) => `${x.toFixed(3)} ms`;
  console.log(`\n## Audit store: audit.fsync modes (${BATCHES} batches of ${RECORDS} records per run, median of ${ROUNDS} rounds, ${tmpdir()})\n`);
  console.log('| variant | records/s | batches/s | p50 per batch | p99 per batch | p50 vs baseline |');
  console.log('|---|---|---|---|---|---|');
  for (const variant of VARIANTS) {
    const f = summary.get(variant)!;
    const label = variant === 'baseline' ? 'baseline (chain + appendFile)' : `fsync: ${variant}`;
    console.log(`| ${label} | ${Math.round(f.recordsPerSec).toLocaleString('en')} | ${Math.round(f.recordsPerSec / RECORDS).toLocaleString('en')} | ${ms(f.p50Ms)} | ${ms(f.p99Ms)} | ${(f.p50Ms / base.p50Ms).toFixed(2)}× |`);
  }
  const { fsyncUs, headUs } = await parts();
  console.log(`\nParts alone (p50 of 200): one fsync of a chain file after a 500-byte append ${fsyncUs.toFixed(0)} µs; one atomic head-file write (write + rename) ${headUs.toFixed(0)} µs.`);
  await printRestartScan();
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
