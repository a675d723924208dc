import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisAuditStore } from '../../adapters/redis/audit-store.ts';
import { AuditQuery, type AuditCall } from '../../src/audit/query.ts';
import { chainEvents } from '../../src/protocol/audit-chain.ts';
import { GENESIS, type ChainHead } from '../../src/protocol/audit-record.ts';
import { callEvents, generatedCall } from '../helpers/audit-calls.ts';
import { expectSameCalls, indexOnly } from '../helpers/audit-index-checks.ts';
import { connectRedis, closeRedis } from '../../adapters/redis/connection.ts';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';

// The same query over the Redis audit list (distributed mode): by its index, kept by the append script, and read
// backwards a page at a time when the index cannot answer.
const available = redisServerAvailable();
let server: RedisServer | undefined;
let store: RedisAuditStore;

describe.skipIf(!available)('AuditQuery over the Redis audit store', () => {
  const calls = Array.from({ length: 1_500 }, (_, i) => generatedCall(i, Date.UTC(2026, 0, 1)));

  beforeAll(async () => {
    server = await startRedisServer();
    store = await RedisAuditStore.connect({ url: server.url, namespace: 'audit-query' });
    let head: ChainHead = GENESIS;
    for (let i = 0; i < calls.length; i += 100) {
      const records = chainEvents(head, calls.slice(i, i + 100).flatMap((c) => callEvents(c)));
      await store.append('default', head, records);
      head = { seq: records.at(-1)!.seq, hash: records.at(-1)!.hash };
    }
  });
  afterAll(async () => {
    await store?.close();
    await server?.stop();
  });

  const sessions = Array.from({ length: 13 }, (_, i) => `s${i}`);
  const scanOf = (s: RedisAuditStore) => new AuditQuery({ readBack: (tenant) => s.readBack(tenant) });
  const everyTenth = () => calls.filter((_, i) => i % 50 === 0).map((c) => c.jobId);

  it('its index answers session pages and jobs exactly as the scan does, without scanning', async () => {
    await expectSameCalls(indexOnly(store), scanOf(store), sessions, everyTenth());
  });

  it('a chain written before the index existed is backfilled on first use, then the appends keep it', async () => {
    const raw = await connectRedis({ url: server!.url, namespace: 'audit-query' }, 'GH_ERR_AUDIT_UNAVAILABLE');
    try {
      const keys = await raw.client.keys(`${raw.prefix}audit:default:*`);
      const index = keys.filter((k) => k.includes(':job:') || k.includes(':session:'));
      expect(index.length).toBeGreaterThan(1_500);
      await raw.client.del(...index);
      await raw.client.hdel(`${raw.prefix}audit:default:head`, 'indexed');
      const later = { ...generatedCall(5_000, Date.UTC(2026, 0, 2)), session: 's2' };
      const head = await store.head('default');
      await store.append('default', head, chainEvents(head, callEvents(later)));
      // Appended while the index was behind: not indexed by the append, found by the backfill.
      expect(await raw.client.exists(`${raw.prefix}audit:default:job:${later.jobId}`)).toBe(0);
      await expectSameCalls(indexOnly(store), scanOf(store), sessions, [...everyTenth(), later.jobId]);
      const next = { ...generatedCall(5_001, Date.UTC(2026, 0, 2)), session: 's2' };
      const now = await store.head('default');
      await store.append('default', now, chainEvents(now, callEvents(next)));
      expect(await raw.client.lrange(`${raw.prefix}audit:default:job:${next.jobId}`, 0, -1)).toHaveLength(callEvents(next).length);
      expect(await raw.client.hget(`${raw.prefix}audit:default:head`, 'indexed')).toBe(String((await store.head('default')).seq));
      // A forged entry (a seq of another record) is caught: the query scans instead and answers the same.
      await raw.client.lset(`${raw.prefix}audit:default:job:${next.jobId}`, 0, '1');
      expect(await store.jobRecords('default', [next.jobId])).toBeUndefined();
      expect(await new AuditQuery(store).job('default', next.jobId)).toEqual(await scanOf(store).job('default', next.jobId));
    } finally {
      await closeRedis(raw.client);
    }
  });

  it('pages a session newest first across the list pages, without duplicates or gaps, and finds an old job', async () => {
    const query = new AuditQuery(store);
    const seen: AuditCall[] = [];
    let cursor: string | undefined;
    do {
      const page = await query.calls('default', { session: 's5' }, { limit: 9, ...(cursor ? { cursor } : {}) });
      seen.push(...page.calls);
      cursor = page.next;
    } while (cursor);
    expect(seen.map((c) => c.jobId)).toEqual(calls.filter((c) => c.session === 's5').reverse().map((c) => c.jobId));
    const job = await query.job('default', calls[2].jobId);
    expect(job?.records.map((r) => r.type)).toEqual(callEvents(calls[2]).map((e) => e.type));
  });
});
