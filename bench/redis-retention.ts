/**
 * `npm run bench -- redis-retention`: what a retention run costs a replica on a Redis chain of RECORDS records
 * (generated calls, a signed checkpoint every 1,000), against an append of 16 records on the same chain and server:
 * a run that finds nothing old (maxAge: it stops at the first young record), a run that reads the whole list and
 * removes nothing (maxBytes above the chain), and a run that removes half the chain (one script: anchor, trim,
 * `audit.pruned`). Needs redis-server.
 */
import { Redis } from 'ioredis';
import { RedisAuditStore } from '../adapters/redis/audit-store.ts';
import { RedisAuditRetention } from '../adapters/redis/audit-retention.ts';
import { ChainWriter } from '../src/audit/chain-writer.ts';
import { CheckpointKey } from '../src/audit/checkpoint.ts';
import { callEvents, generatedCall } from '../test/helpers/audit-calls.ts';
import { redisServerAvailable, startRedisServer } from '../test/helpers/redis-server.ts';
import { timed } from './stats.ts';

const RECORDS = Number(process.env.BENCH_RETENTION_RECORDS ?? 100_000);
const START = Date.UTC(2026, 0, 1);

export async function printRedisRetentionBench(): Promise<void> {
  if (!redisServerAvailable()) {
    console.log('redis-retention: redis-server is not installed; skipped');
    return;
  }
  const server = await startRedisServer();
  const store = await RedisAuditStore.connect({ url: server.url, namespace: 'bench-retention' });
  const key = CheckpointKey.parse('5c'.repeat(32));
  const writer = new ChainWriter(store, { every: 1_000, key: async () => key, atClose: false, now: () => START });
  try {
    let i = 0;
    while ((await store.head('default')).seq < RECORDS) {
      const batch = Array.from({ length: 100 }, () => generatedCall(i++, START)).flatMap((c) => callEvents(c));
      await writer.write(new Map([['default', batch]]));
    }
    // 16 records: the first two (submitted, decided) of 8 calls.
    const sixteen = () => Array.from({ length: 8 }, () => callEvents(generatedCall(i++, START)).slice(0, 2)).flat();
    const append = await timed(50, () => writer.write(new Map([['default', sixteen()]])));
    const young = await timed(5, () => new RedisAuditRetention(store, { maxAgeMs: 86_400_000, intervalMs: 60_000, now: () => START }).prune('default'));
    const scan = await timed(5, () => new RedisAuditRetention(store, { maxBytes: 1e12, intervalMs: 60_000, now: () => START }).prune('default'));
    let bytes = 0;
    for await (const { line } of store.lines('default')) bytes += Buffer.byteLength(line) + 1;
    // The longest command of the run (the trim script: Redis serves nobody else meanwhile), from the slow log.
    const admin = new Redis(server.url);
    await admin.config('SET', 'slowlog-log-slower-than', '0');
    await admin.config('SET', 'slowlog-max-len', '100000');
    await admin.slowlog('RESET');
    const t = performance.now();
    const pruned = await new RedisAuditRetention(store, { maxBytes: Math.floor(bytes / 2), intervalMs: 60_000, now: () => START }).prune('default');
    const trim = performance.now() - t;
    const entries = (await admin.slowlog('GET', 100_000)) as [number, number, number, string[]][];
    const longest = Math.max(...entries.map((e) => e[2])) / 1000;
    admin.disconnect();
    const head = await store.head('default');
    console.log(`Redis audit retention on a chain of ${head.seq.toLocaleString('en')} records (${(bytes / 1024 / 1024).toFixed(1)} MiB of lines), medians:`);
    console.log(`  append of 16 records (baseline)        ${append.toFixed(2)} ms`);
    console.log(`  run, nothing old (maxAge)              ${young.toFixed(2)} ms`);
    console.log(`  run, reads the whole list (maxBytes)   ${scan.toFixed(1)} ms`);
    console.log(`  run that removes ${pruned?.records.toLocaleString('en')} records (half)   ${trim.toFixed(1)} ms (one run); its longest Redis command ${longest.toFixed(1)} ms`);
  } finally {
    await writer.close();
    await store.close();
    await server.stop();
  }
}
