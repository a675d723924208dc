import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisAuditStore } from '../../adapters/redis/audit-store.ts';
import { AuditQuery, type AuditCall } from '../../src/audit/query.ts';
import { chainEvents } from '../../src/protocol/audit-chain.ts';
import { GENESIS, type ChainHead } from '../../src/protocol/audit-record.ts';
import { callEvents, generatedCall } from '../helpers/audit-calls.ts';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';

// The same query over the Redis audit list (distributed mode), read backwards a page at a time.
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
