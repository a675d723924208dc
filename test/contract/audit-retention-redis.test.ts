import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { RedisAuditStore } from '../../adapters/redis/audit-store.ts';
import { RedisAuditRetention, type RedisRetentionOptions } from '../../adapters/redis/audit-retention.ts';
import { ChainWriter } from '../../src/audit/chain-writer.ts';
import { CHECKPOINT_TYPE, CheckpointKey } from '../../src/audit/checkpoint.ts';
import { AuditQuery } from '../../src/audit/query.ts';
import { verifyStore } from '../../src/audit/verify.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import { readChain, writeCalls as writeCallsOf } from '../helpers/audit-calls.ts';
import { expectSameCalls, indexOnly } from '../helpers/audit-index-checks.ts';
import { AUDIT_SIGNING_KEY } from '../helpers/distributed.ts';
import { RedisJobLedger } from '../../adapters/redis/job-ledger.ts';
import { recordingLogger } from '../helpers/capturing-log.ts';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';

// Retention of the Redis chains (distributed mode): the oldest records go up to a signed checkpoint kept as the
// anchor, `audit.pruned` says so in the chain, and reads, the index, appends and verify carry on from the anchor.
const available = redisServerAvailable();
const START = Date.UTC(2026, 0, 1);
const key = CheckpointKey.parse(AUDIT_SIGNING_KEY);
const SESSIONS = Array.from({ length: 13 }, (_, i) => `s${i}`);
let server: RedisServer | undefined;
let namespaces = 0;
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A store in a fresh namespace, and a gateway's writer on it: a signed checkpoint every 25 records. */
async function open(namespace = `ret${++namespaces}`): Promise<{ store: RedisAuditStore; writer: ChainWriter; namespace: string }> {
  const store = await RedisAuditStore.connect({ url: server!.url, namespace });
  const writer = new ChainWriter(store, { every: 25, key: async () => key, atClose: false, now: () => START });
  closers.push(() => writer.close());
  return { store, writer, namespace };
}

const writeCalls = (writer: ChainWriter, from: number, to: number) => writeCallsOf(writer, from, to, START);
const readAll = readChain;

const retention = (store: RedisAuditStore, options: Partial<RedisRetentionOptions>) => new RedisAuditRetention(store, { intervalMs: 60_000, now: () => START + 10_000, ...options });
const scanOf = (store: RedisAuditStore) => new AuditQuery({ readBack: (tenant) => store.readBack(tenant) });

describe.skipIf(!available)('audit retention in Redis', () => {
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('maxAge removes the records up to the newest checkpoint all older than it; reads, the index, appends and verify go on from the anchor', async () => {
    const { store, writer, namespace } = await open();
    const calls = await writeCalls(writer, 0, 200);
    const before = await readAll(store);
    // Calls 0…99 are older than the cutoff (START + 1000 ms).
    const pruned = await retention(store, { maxAgeMs: 9_000 }).prune('default');
    const anchor = (await store.anchor('default'))!;
    expect(anchor.type).toBe(CHECKPOINT_TYPE);
    expect(pruned).toMatchObject({ fromSeq: 1, throughSeq: anchor.seq, anchor: { seq: anchor.seq, hash: anchor.hash }, reason: 'maxAge', records: anchor.seq });
    // The newest checkpoint whose records are all older: the next one covers a younger record.
    expect(before.filter((r) => r.seq <= anchor.seq).every((r) => r.at <= START + 1_000)).toBe(true);
    const next = before.find((r) => r.type === CHECKPOINT_TYPE && r.seq > anchor.seq)!;
    expect(before.filter((r) => r.seq <= next.seq).some((r) => r.at > START + 1_000)).toBe(true);
    expect(pruned!.bytes).toBe(before.filter((r) => r.seq <= anchor.seq).reduce((n, r) => n + Buffer.byteLength(JSON.stringify(r)) + 1, 0));

    const raw = new Redis(server!.url);
    closers.push(async () => void raw.disconnect());
    expect(await raw.llen(`gh:${namespace}:audit:default:log`)).toBe(before.length + 1 - anchor.seq);
    const kept = await readAll(store);
    expect(kept[0].seq).toBe(anchor.seq + 1);
    expect(kept.at(-1)).toMatchObject({ type: 'audit.pruned', seq: before.length + 1 });
    expect((await readAll(store, 3)).map((r) => r.seq)).toEqual(kept.map((r) => r.seq));
    expect((await readAll(store, anchor.seq + 5))[0].seq).toBe(anchor.seq + 5);
    expect(await store.head('default')).toEqual({ seq: before.length + 1, hash: kept.at(-1)!.hash });

    // The writer's cached head is stale: it re-chains on the pruned record and goes on.
    await writeCalls(writer, 200, 260);
    const report = await verifyStore(store, 'default', key.publicKey);
    expect(report).toMatchObject({ ok: true, anchor: { seq: anchor.seq, hash: anchor.hash }, checkpoints: { checked: true } });
    expect(report.records).toBe((await readAll(store)).length);
    // The index answers what the kept records say, and nothing of the removed calls.
    await expectSameCalls(indexOnly(store), scanOf(store), SESSIONS, calls.filter((_, i) => i % 9 === 0).map((c) => c.jobId));
    expect(await indexOnly(store).job('default', calls[0].jobId)).toBeUndefined();
    // The index lists drop what went: a removed job's list is gone, a session's starts after the anchor.
    const prefix = `gh:${namespace}:audit:default`;
    expect(await raw.exists(`${prefix}:job:${encodeURIComponent(calls[0].jobId)}`)).toBe(0);
    expect(await raw.llen(`${prefix}:job:${encodeURIComponent(calls.at(-1)!.jobId)}`)).toBeGreaterThan(0);
    for (const session of SESSIONS) {
      const first = await raw.lindex(`${prefix}:session:${session}`, 0);
      expect(Number(first!.split('\t')[0])).toBeGreaterThan(anchor.seq);
    }
  });

  it('maxBytes removes the fewest oldest records, up to a checkpoint, that leave the lines within it', async () => {
    const { store, writer } = await open();
    await writeCalls(writer, 0, 200);
    const before = await readAll(store);
    const bytes = (records: AuditRecord[]) => records.reduce((n, r) => n + Buffer.byteLength(JSON.stringify(r)) + 1, 0);
    const maxBytes = Math.floor(bytes(before) / 3);
    const pruned = await retention(store, { maxBytes }).prune('default');
    expect(pruned?.reason).toBe('maxBytes');
    const kept = before.filter((r) => r.seq > pruned!.throughSeq);
    expect(bytes(kept)).toBeLessThanOrEqual(maxBytes);
    // One checkpoint earlier would not have been enough.
    const earlier = before.filter((r) => r.type === CHECKPOINT_TYPE && r.seq < pruned!.throughSeq).at(-1)!;
    expect(bytes(before.filter((r) => r.seq > earlier.seq))).toBeGreaterThan(maxBytes);
    expect(await verifyStore(store, 'default', key.publicKey)).toMatchObject({ ok: true, anchor: { seq: pruned!.throughSeq } });
    // The chain, its `audit.pruned` included, within maxBytes: a second run removes nothing.
    expect(await retention(store, { maxBytes: bytes(await readAll(store)) }).prune('default')).toBeUndefined();
  });

  it('holds back at what an audit sink has not delivered, and never removes the tail after the newest checkpoint', async () => {
    const { store, writer } = await open();
    await writeCalls(writer, 0, 120);
    const checkpoints = (await readAll(store)).filter((r) => r.type === CHECKPOINT_TYPE).map((r) => r.seq);
    const held = await retention(store, { maxAgeMs: 1, delivered: async () => checkpoints[2] - 1 }).prune('default');
    expect(held?.throughSeq).toBe(checkpoints[1]);
    const all = await retention(store, { maxAgeMs: 1 }).prune('default');
    const newestCheckpoint = checkpoints.at(-1)!;
    expect(all).toMatchObject({ fromSeq: checkpoints[1] + 1, throughSeq: newestCheckpoint });
    expect((await readAll(store))[0].seq).toBe(newestCheckpoint + 1);
    expect(await verifyStore(store, 'default', key.publicKey)).toMatchObject({ ok: true, anchor: { seq: newestCheckpoint } });
  });

  it('runs on the replica that holds the lease only, and warns once while a sink holds it back', async () => {
    const { store, writer, namespace } = await open();
    await writeCalls(writer, 0, 120);
    const ledger = await RedisJobLedger.connect({ url: server!.url, namespace });
    closers.push(() => ledger.close());
    const leaseOf = (holder: string) => ({ acquire: (ttlMs: number) => ledger.acquireLock('audit-retention', holder, ttlMs), release: () => ledger.releaseLock('audit-retention', holder) });
    const log = recordingLogger();
    const { lines } = log;
    let delivered = 30;
    // Time moves on: the `audit.pruned` records of one run are old at the next.
    let now = START + 10_000;
    const first = retention(store, { maxAgeMs: 1, lease: leaseOf('a'), log, delivered: async () => delivered, now: () => now++ });
    const second = retention(store, { maxAgeMs: 1, lease: leaseOf('b'), log, now: () => now++ });
    await first.run();
    await first.run();
    const anchored = (await store.anchor('default'))!.seq;
    expect(anchored).toBeLessThanOrEqual(30);
    expect(lines.filter((l) => l.level === 'warn' && l.msg.includes('held back'))).toHaveLength(1);
    // `b` would remove everything, but `a` holds the lease.
    await second.run();
    expect((await store.anchor('default'))!.seq).toBe(anchored);
    delivered = Infinity;
    await first.run();
    expect((await store.anchor('default'))!.seq).toBeGreaterThan(anchored);
    expect(lines.filter((l) => l.level === 'info' && l.msg.includes('no longer held back'))).toHaveLength(1);
    // Once `a` stops, its lease is free for `b`.
    await first.stop();
    await writeCalls(writer, 120, 160);
    const before = (await store.anchor('default'))!.seq;
    await second.run();
    expect((await store.anchor('default'))!.seq).toBeGreaterThan(before);
  });

  it('two replicas running retention at once remove each record once and record one audit.pruned', async () => {
    const { store, writer, namespace } = await open();
    await writeCalls(writer, 0, 200);
    const other = await RedisAuditStore.connect({ url: server!.url, namespace });
    closers.push(() => other.close());
    const results = await Promise.all([retention(store, { maxAgeMs: 9_000 }).prune('default'), retention(other, { maxAgeMs: 9_000 }).prune('default')]);
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
    const kept = await readAll(store);
    expect(kept.filter((r) => r.type === 'audit.pruned')).toHaveLength(1);
    expect(await verifyStore(store, 'default', key.publicKey)).toMatchObject({ ok: true });
  });

  it('verify reads the chain again when retention moved the anchor while it read', async () => {
    const { store, writer } = await open();
    await writeCalls(writer, 0, 60);
    await retention(store, { maxAgeMs: 1, delivered: async () => 30 }).prune('default');
    let trimmed: number | undefined;
    // Another replica trims the chain after verify read the anchor, before it reads the records.
    const racing: Parameters<typeof verifyStore>[0] = {
      anchor: (tenant) => store.anchor(tenant),
      recordedHead: (tenant) => store.recordedHead(tenant),
      tornTail: () => store.tornTail(),
      read: (tenant, options) =>
        (async function* () {
          trimmed ??= (await retention(store, { maxAgeMs: 1, now: () => START + 20_000 }).prune('default'))!.throughSeq;
          yield* store.read(tenant, options);
        })(),
    };
    expect(await verifyStore(racing, 'default', key.publicKey)).toMatchObject({ ok: true, anchor: { seq: trimmed } });
  });

  it('verify refuses records removed by hand behind an anchor no audit.pruned names, and a garbled anchor', async () => {
    const { store, writer, namespace } = await open();
    await writeCalls(writer, 0, 60);
    const checkpoint = (await readAll(store)).find((r) => r.type === CHECKPOINT_TYPE)!;
    const raw = new Redis(server!.url);
    closers.push(async () => void raw.disconnect());
    const prefix = `gh:${namespace}:audit:default`;
    await raw.ltrim(`${prefix}:log`, checkpoint.seq, -1);
    await raw.hset(`${prefix}:head`, 'base', checkpoint.seq);
    await raw.set(`${prefix}:anchor`, JSON.stringify(checkpoint));
    expect(await verifyStore(store, 'default', key.publicKey)).toMatchObject({ ok: false, code: 'GH_ERR_AUDIT_BROKEN' });
    await raw.set(`${prefix}:anchor`, '{"seq":');
    expect(await verifyStore(store, 'default', key.publicKey)).toMatchObject({ ok: false, code: 'GH_ERR_AUDIT_BROKEN' });
  });

  it('a chain cut at its newest records stays refused after retention', async () => {
    const { store, writer, namespace } = await open();
    await writeCalls(writer, 0, 60);
    await retention(store, { maxAgeMs: 1 }).prune('default');
    const raw = new Redis(server!.url);
    closers.push(async () => void raw.disconnect());
    await raw.rpop(`gh:${namespace}:audit:default:log`, 2);
    await expect(store.head('default')).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_TRUNCATED' });
    await expect(retention(store, { maxAgeMs: 1 }).prune('default')).resolves.toBeUndefined();
    await expect(writeCalls(writer, 60, 61)).rejects.toBeDefined();
  });
});
