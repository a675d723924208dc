/**
 * `npm run bench -- audit-query`: how long `gatehouse audit query` takes over a long chain (BENCH_AUDIT_QUERY_CALLS
 * generated calls, 265,000 by default: about 10⁶ records), read backwards from the end with no index. The figures:
 * the newest page; a session whose calls are the newest; a session whose calls are the oldest (the worst case: the
 * whole chain is read); one job near the end and one at the start. Each the median of BENCH_ROUNDS (3) runs.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileAuditStore } from '../adapters/file/audit-store.ts';
import { AuditQuery } from '../src/audit/query.ts';
import { writeGeneratedLog } from '../test/helpers/audit-calls.ts';
import { median } from './stats.ts';

export async function printAuditQueryBench(): Promise<void> {
  const count = Number(process.env.BENCH_AUDIT_QUERY_CALLS ?? 265_000);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-audit-query-'));
  try {
    const made = performance.now();
    const calls = await writeGeneratedLog(dir, count, { batch: 4_096, sessionOf: (i) => (i < 50 ? 'oldest' : i >= count - 50 ? 'newest' : `s${i % 5_000}`) });
    const store = new FileAuditStore(dir);
    const records = (await store.head('default')).seq;
    const bytes = statSync(join(dir, 'audit', 'default.jsonl')).size;
    console.log(`\naudit query: ${count.toLocaleString('en')} calls, ${records.toLocaleString('en')} records, ${(bytes / 2 ** 20).toFixed(0)} MiB (written in ${((performance.now() - made) / 1000).toFixed(1)} s); no index, read backwards from the end\n`);
    const query = new AuditQuery(store);
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['the newest 50 calls', () => query.calls('default', {}, { limit: 50 })],
      ['a session of the newest 50 calls', () => query.calls('default', { session: 'newest' }, { limit: 50 })],
      ['a session of the oldest 50 calls (whole chain)', () => query.calls('default', { session: 'oldest' }, { limit: 50 })],
      ['one job near the end', () => query.job('default', calls[count - 10].jobId)],
      ['one job at the start', () => query.job('default', calls[5].jobId)],
    ];
    console.log('| query | median ms |');
    console.log('|---|---|');
    for (const [name, run] of cases) {
      const times: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const t = performance.now();
        await run();
        times.push(performance.now() - t);
      }
      console.log(`| ${name} | ${median(times).toFixed(1)} |`);
    }
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
