/**
 * `npm run bench -- console-pages`: what the console's Policy and Overview pages cost over a busy trail. BENCH_CONSOLE_CALLS
 * generated calls (100,000 by default, one every 10 ms: about 375,000 records over 17 minutes) in one chain; the
 * Policy page's rule hits over 24 h (capped at 200,000 records read) and the Overview's charts of the last hour
 * (capped at 100,000), each against the baseline of reading as many records newest first and doing nothing with
 * them, measured in the same run. Each the median of BENCH_ROUNDS (3) runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileAuditStore } from '../adapters/file/audit-store.ts';
import { callCharts, OVERVIEW_MAX_RECORDS } from '../src/api/console/overview-data.ts';
import { countRuleHits, HIT_WINDOWS, MAX_SCANNED } from '../src/api/console/rule-hits.ts';
import { writeGeneratedLog } from '../test/helpers/audit-calls.ts';
import { timed } from './stats.ts';

export async function printConsolePagesBench(): Promise<void> {
  const count = Number(process.env.BENCH_CONSOLE_CALLS ?? 100_000);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-console-'));
  try {
    const calls = await writeGeneratedLog(dir, count, { batch: 4_096 });
    const now = calls[count - 1].at + 1_000;
    const store = new FileAuditStore(dir);
    const records = (await store.head('default')).seq;
    console.log(`\nconsole pages: ${count.toLocaleString('en')} calls, ${records.toLocaleString('en')} records in one chain\n`);
    const scan = async (limit: number) => {
      let n = 0;
      for await (const _ of store.readBack('default')) if (++n >= limit) break;
      return n;
    };
    const time = (run: () => Promise<unknown>) => timed(rounds, run);
    const cases: Array<[string, number, () => Promise<unknown>]> = [
      ['Policy: rule hits over 24 h', Math.min(records, MAX_SCANNED), () => countRuleHits(store, 'default', now - HIT_WINDOWS['24h'])],
      ['Overview: the last hour, per minute', Math.min(records, OVERVIEW_MAX_RECORDS), () => callCharts(store, 'default', now)],
    ];
    console.log('| page part | records read | median ms | baseline: read as many, ms | ratio |');
    console.log('|---|---|---|---|---|');
    for (const [name, read, run] of cases) {
      const baseline = await time(() => scan(read));
      const ms = await time(run);
      console.log(`| ${name} | ${read.toLocaleString('en')} | ${ms.toFixed(1)} | ${baseline.toFixed(1)} | ${(ms / baseline).toFixed(2)}× |`);
    }
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
