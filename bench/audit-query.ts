/**
 * `npm run bench -- audit-query`: how long `gatehouse audit query` takes over a long chain (BENCH_AUDIT_QUERY_CALLS
 * generated calls, 265,000 by default: about 10⁶ records), read backwards from the end (the scan) against the
 * chain's index (adapters/file/audit-index.ts), loaded from its file by a fresh store (as the CLI does: "cold") and
 * kept by a running one ("warm"). The figures: the newest page; a session whose calls are the newest; a session
 * whose calls are the oldest (the scan's worst case: the whole chain is read); one job near the end and one at the
 * start. Each the median of BENCH_ROUNDS (3) runs. Then what the index costs: bytes on disk per record, a rebuild
 * from scratch, and appends of small batches (as the trail's group commit makes them) with and without it; in
 * Redis (when redis-server is installed), the memory the index takes beside the records (MEMORY USAGE).
 */
import { mkdtempSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { FileAuditStore } from '../adapters/file/audit-store.ts';
import { AuditQuery } from '../src/audit/query.ts';
import { chainEvents } from '../src/protocol/audit-chain.ts';
import { GENESIS, type AuditEvent } from '../src/protocol/audit-record.ts';
import { callEvents, generatedCall, writeGeneratedLog } from '../test/helpers/audit-calls.ts';
import { median, timed } from './stats.ts';
import { RedisAuditStore } from '../adapters/redis/audit-store.ts';
import { redisServerAvailable, startRedisServer } from '../test/helpers/redis-server.ts';

/** Records per append in the append cost figures, and how many calls they write. */
const APPEND_BATCH = 16;
const APPEND_CALLS = 20_000;

export async function printAuditQueryBench(): Promise<void> {
  const count = Number(process.env.BENCH_AUDIT_QUERY_CALLS ?? 265_000);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-audit-query-'));
  try {
    const made = performance.now();
    const calls = await writeGeneratedLog(dir, count, { batch: 4_096, sessionOf: (i) => (i < 50 ? 'oldest' : i >= count - 50 ? 'newest' : `s${i % 5_000}`) });
    const writeSeconds = (performance.now() - made) / 1000;
    const store = new FileAuditStore(dir);
    const records = (await store.head('default')).seq;
    const chainBytes = statSync(store.filePath('default')).size;
    const indexBytes = statSync(store.indexPath('default')).size;
    console.log(
      `\naudit query: ${count.toLocaleString('en')} calls, ${records.toLocaleString('en')} records, ${(chainBytes / 2 ** 20).toFixed(0)} MiB of chain ` +
        `(written in ${writeSeconds.toFixed(1)} s), ${(indexBytes / 2 ** 20).toFixed(0)} MiB of index (${(indexBytes / records).toFixed(0)} bytes per record, ${((100 * indexBytes) / chainBytes).toFixed(0)}% of the chain)\n`,
    );
    const scan = new AuditQuery({ readBack: (tenant) => store.readBack(tenant) });
    const warm = new AuditQuery(store);
    const cases: Array<[string, (query: AuditQuery) => Promise<unknown>]> = [
      ['the newest 50 calls (no index used)', (q) => q.calls('default', {}, { limit: 50 })],
      ['a session of the newest 50 calls', (q) => q.calls('default', { session: 'newest' }, { limit: 50 })],
      ['a session of the oldest 50 calls', (q) => q.calls('default', { session: 'oldest' }, { limit: 50 })],
      ['one job near the end', (q) => q.job('default', calls[count - 10].jobId)],
      ['one job at the start', (q) => q.job('default', calls[5].jobId)],
    ];
    console.log('| query | scan, median ms | index cold (a fresh store loads it), ms | index warm, ms | scan / warm |');
    console.log('|---|---|---|---|---|');
    for (const [name, run] of cases) {
      const scanned = await timed(rounds, () => run(scan));
      const cold = await timed(rounds, async () => {
        const fresh = new FileAuditStore(dir);
        await run(new AuditQuery(fresh));
        await fresh.close();
      });
      await run(warm);
      const kept = await timed(rounds, () => run(warm));
      console.log(`| ${name} | ${scanned.toFixed(1)} | ${cold.toFixed(1)} | ${kept.toFixed(1)} | ${(scanned / kept).toFixed(1)}x |`);
    }
    await store.close();

    unlinkSync(store.indexPath('default'));
    const rebuilding = new FileAuditStore(dir);
    const rebuild = await timed(1, () => new AuditQuery(rebuilding).job('default', calls[5].jobId));
    await rebuilding.close();
    console.log(`\nrebuilding the index from scratch (the first query after it was deleted): ${(rebuild / 1000).toFixed(2)} s for ${records.toLocaleString('en')} records`);

    console.log(`\nappends of ${APPEND_BATCH} records (fsync off, ${APPEND_CALLS.toLocaleString('en')} calls), median of ${Math.max(rounds, 5)} rounds, alternating:\n`);
    console.log('| index | records/s | CPU µs per record |');
    console.log('|---|---|---|');
    // Rounds alternate off and on, so a neighbour's load on the machine falls on both alike.
    const runs: Record<'off' | 'on', Array<{ cpu: number; rate: number }>> = { off: [], on: [] };
    for (let r = 0; r < Math.max(rounds, 5); r++) {
      for (const index of r % 2 === 0 ? [false, true] : [true, false]) {
        const { cpuMicros, records: n, ms } = await appendRun(index);
        runs[index ? 'on' : 'off'].push({ cpu: cpuMicros / n, rate: n / (ms / 1000) });
      }
    }
    const costs = { off: median(runs.off.map((x) => x.cpu)), on: median(runs.on.map((x) => x.cpu)) };
    for (const index of ['off', 'on'] as const) {
      console.log(`| ${index} | ${Math.round(median(runs[index].map((x) => x.rate))).toLocaleString('en')} | ${costs[index].toFixed(2)} |`);
    }
    console.log(`\nthe index costs ${(costs.on - costs.off).toFixed(2)} µs of CPU per record appended (${((100 * (costs.on - costs.off)) / costs.off).toFixed(0)}%)`);
    if (redisServerAvailable()) await printRedisIndexMemory();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Appends APPEND_CALLS calls' records in batches of APPEND_BATCH to a fresh chain; the records are chained beforehand. */
async function appendRun(index: boolean): Promise<{ cpuMicros: number; records: number; ms: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-audit-append-'));
  try {
    const events: AuditEvent[] = [];
    for (let i = 0; i < APPEND_CALLS; i++) events.push(...callEvents(generatedCall(i, Date.UTC(2026, 0, 1))));
    const store = new FileAuditStore(dir, { fsync: 'off', index });
    const batches = [];
    let head = GENESIS;
    for (let i = 0; i < events.length; i += APPEND_BATCH) {
      const records = chainEvents(head, events.slice(i, i + APPEND_BATCH));
      batches.push({ head, records });
      head = { seq: records[records.length - 1].seq, hash: records[records.length - 1].hash };
    }
    const cpu = process.cpuUsage();
    const t = performance.now();
    for (const batch of batches) await store.append('default', batch.head, batch.records);
    const ms = performance.now() - t;
    const used = process.cpuUsage(cpu);
    await store.close();
    return { cpuMicros: used.user + used.system, records: events.length, ms };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The Redis memory of APPEND_CALLS calls' records and of their index. */
async function printRedisIndexMemory(): Promise<void> {
  const server = await startRedisServer();
  const store = await RedisAuditStore.connect({ url: server.url, namespace: 'bench' });
  try {
    let head = GENESIS;
    const events: AuditEvent[] = [];
    for (let i = 0; i < APPEND_CALLS; i++) events.push(...callEvents({ ...generatedCall(i, Date.UTC(2026, 0, 1)), session: `s${i % 500}` }));
    for (let i = 0; i < events.length; i += APPEND_BATCH) {
      const records = chainEvents(head, events.slice(i, i + APPEND_BATCH));
      await store.append('default', head, records);
      head = { seq: records[records.length - 1].seq, hash: records[records.length - 1].hash };
    }
    const redis = new Redis(server.url);
    let log = 0;
    let index = 0;
    for (const key of await redis.keys('*audit:default:*')) {
      const bytes = Number(await redis.memory('USAGE', key));
      if (key.endsWith(':log')) log += bytes;
      else if (key.includes(':job:') || key.includes(':session:')) index += bytes;
    }
    redis.disconnect();
    console.log(`\nRedis: ${events.length.toLocaleString('en')} records take ${(log / events.length).toFixed(0)} bytes each; their index ${(index / events.length).toFixed(0)} bytes per record (${((100 * index) / log).toFixed(0)}%)`);
  } finally {
    await store.close();
    await server.stop();
  }
}
