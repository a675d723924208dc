import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../adapters/redis/store.ts';
import { RedisApprovalStore } from '../../adapters/redis/approval-store.ts';
import { RedisAuditStore } from '../../adapters/redis/audit-store.ts';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { runStoreContract } from './store.contract.ts';
import { runApprovalStoreContract, sampleApproval } from './approval-store.contract.ts';
import { Redis } from 'ioredis';
import { runAuditStoreContract } from './audit-store.contract.ts';
import { chainEvents } from '../../src/protocol/audit-chain.ts';
import { GENESIS } from '../../src/protocol/audit-record.ts';
import { RedisJobLedger } from '../../adapters/redis/job-ledger.ts';
import { runJobLedgerContract } from './job-ledger.contract.ts';
import { RedisSessionFacts } from '../../adapters/redis/session-facts.ts';
import { runSessionFactsContract } from './session-facts.contract.ts';

// One real redis-server per file; every store made by a contract gets its own namespace, so tests never see
// each other's keys. Redis expires keys on its own clock, so `advance` waits for real.
const available = redisServerAvailable();
let server: RedisServer | undefined;
let namespaces = 0;
const url = () => server!.url;

describe.skipIf(!available)('Redis adapters', () => {
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  runStoreContract('redis', () => RedisStore.connect({ url: url(), namespace: `store${++namespaces}` }), (ms) => new Promise((r) => setTimeout(r, ms)));

  let sessions = '';
  runSessionFactsContract(
    'redis',
    () => RedisSessionFacts.connect({ url: url(), namespace: (sessions = `sessions${++namespaces}`) }),
    (ms) => new Promise((r) => setTimeout(r, ms)),
    () => RedisSessionFacts.connect({ url: url(), namespace: sessions }),
    { replicas: true },
  );

  let approvals = '';
  runApprovalStoreContract(
    'redis',
    () => RedisApprovalStore.connect({ url: url(), namespace: (approvals = `approvals${++namespaces}`) }),
    () => RedisApprovalStore.connect({ url: url(), namespace: approvals }),
  );

  let audit = '';
  runAuditStoreContract(
    'redis',
    () => RedisAuditStore.connect({ url: url(), namespace: (audit = `audit${++namespaces}`) }),
    () => RedisAuditStore.connect({ url: url(), namespace: audit }),
    async (tenant, n) => {
      const raw = new Redis(url());
      await raw.rpop(`gh:${audit}:audit:${encodeURIComponent(tenant)}:log`, n);
      raw.disconnect();
    },
  );

  runJobLedgerContract('redis', async () => { const namespace = `ledger${++namespaces}`; return { ledger: await RedisJobLedger.connect({ url: url(), namespace }), reopen: () => RedisJobLedger.connect({ url: url(), namespace }) }; }, (ms) => new Promise((r) => setTimeout(r, ms)));

  describe('Redis specifics', () => {
    it('reads and counts on a session hash written in the JSON layout, keeping its budget tools and loop-breaker times', async () => {
      const namespace = `sessions${++namespaces}`;
      const raw = new Redis(url());
      await raw.hset(`gh:${namespace}:sessionfacts:s:old`, {
        v: 'old.1', id: 's:old', startedAt: '1', calls: '2', tools: '["fs__read"]', riskTags: '[]', labels: '[]', approvals: '0',
        'b:spend': '{"calls":2,"outputBytes":10,"upstreamMs":3,"tools":["fs__read","fs__list"]}',
        'r:loop fs__read 00ff': '{"times":[100,200],"until":60200}',
      });
      const facts = await RedisSessionFacts.connect({ url: url(), namespace });
      const [old] = await facts.read(['s:old']);
      expect(old).toMatchObject({ calls: 2, budgets: { spend: { calls: 2, outputBytes: 10, upstreamMs: 3, tools: ['fs__read', 'fs__list'] } }, repeats: { 'loop fs__read 00ff': { times: [100, 200], until: 60_200 } } });
      await facts.update([{ key: 's:old', ttlMs: 60_000 }], ([s]) => {
        const spend = s!.budgets.spend;
        const entry = s!.repeats['loop fs__read 00ff'];
        return { next: [{ ...s!, calls: 3, budgets: { spend: { ...spend, calls: 3 } }, repeats: { 'loop fs__read 00ff': { times: [...entry.times, 300], until: 60_300 } } }], value: undefined };
      });
      await facts.close();
      const again = await RedisSessionFacts.connect({ url: url(), namespace });
      expect(await again.read(['s:old'])).toEqual([
        { ...old, calls: 3, budgets: { spend: { calls: 3, outputBytes: 10, upstreamMs: 3, tools: ['fs__read', 'fs__list'] } }, repeats: { 'loop fs__read 00ff': { times: [100, 200, 300], until: 60_300 } } },
      ]);
      expect(await raw.hget(`gh:${namespace}:sessionfacts:s:old`, 'b:spend')).toBe('3,10,3');
      await again.close();
      raw.disconnect();
    });

    it('appends and reads long chains in pages, from any seq', async () => {
      const store = await RedisAuditStore.connect({ url: url(), namespace: `audit${++namespaces}` });
      const records = chainEvents(GENESIS, Array.from({ length: 2_345 }, (_, i) => ({ tenant: 't', at: i, type: `e${i}`, actor: 'a', data: {} })));
      expect(await store.append('t', GENESIS, records)).toEqual({ ok: true });
      const seqs: number[] = [];
      for await (const r of store.read('t', { fromSeq: 1_200 })) seqs.push(r.seq);
      expect(seqs).toEqual(Array.from({ length: 2_345 - 1_199 }, (_, i) => 1_200 + i));
      expect(await store.head('t')).toEqual({ seq: 2_345, hash: records.at(-1)!.hash });
      await store.close();
    });

    it('refuses records that do not continue the expected head', async () => {
      const store = await RedisAuditStore.connect({ url: url(), namespace: `audit${++namespaces}` });
      const records = chainEvents({ seq: 5, hash: GENESIS.hash }, [{ tenant: 't', at: 1, type: 'x', actor: 'a', data: {} }]);
      await expect(store.append('t', GENESIS, records)).rejects.toMatchObject({ code: 'GH_ERR_INTERNAL' });
      expect(await store.head('t')).toEqual(GENESIS);
      await store.close();
    });

    it('tells watchers about changes published while their subscriber was reconnecting', async () => {
      const namespace = `approvals${++namespaces}`;
      const store = await RedisApprovalStore.connect({ url: url(), namespace });
      const other = await RedisApprovalStore.connect({ url: url(), namespace });
      await store.create(sampleApproval('lost1'));
      const seen: string[] = [];
      const stop = store.watch((r) => seen.push(`${r.id}:${r.state}`));
      const admin = new Redis(url());
      // Drop every subscriber connection, then write before it is back: the published message reaches no one.
      await admin.client('KILL', 'TYPE', 'pubsub');
      await other.update('lost1', (r) => ({ ...r, state: 'approved' }));
      const until = Date.now() + 5_000;
      while (!seen.includes('lost1:approved') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(seen).toContain('lost1:approved');
      stop();
      admin.disconnect();
      await store.close();
      await other.close();
    });

    it('keeps approvals and audit chains across a crash of a persistent Redis, and reconnects by itself', async () => {
      const own = await startRedisServer({ persistent: true });
      const approvals = await RedisApprovalStore.connect({ url: own.url });
      const audit = await RedisAuditStore.connect({ url: own.url });
      await approvals.create(sampleApproval('kept1'));
      const records = chainEvents(GENESIS, [{ tenant: 't', at: 1, type: 'a', actor: 'x', data: {} }]);
      await audit.append('t', GENESIS, records);
      await own.restart();
      const until = Date.now() + 10_000;
      let record = await approvals.get('kept1').catch(() => undefined);
      while (!record && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 50));
        record = await approvals.get('kept1').catch(() => undefined);
      }
      expect(record?.state).toBe('pending');
      expect(await audit.head('t')).toEqual({ seq: 1, hash: records[0].hash });
      await approvals.close();
      await audit.close();
      await own.stop();
    });

    it('fails closed with a coded error naming the endpoint when Redis goes away, and never hangs', async () => {
      const own = await startRedisServer();
      const audit = await RedisAuditStore.connect({ url: own.url, namespace: 'gone' });
      const store = await RedisStore.connect({ url: own.url, namespace: 'gone' });
      await own.stop();
      await expect(audit.head('t')).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_UNAVAILABLE', data: { endpoint: own.url } });
      await expect(store.get('k')).rejects.toMatchObject({ code: 'GH_ERR_STATE_UNAVAILABLE', data: { endpoint: own.url } });
      await audit.close();
      await store.close();
    });
  });

  describe('connection errors', () => {
    it('names the endpoint when nothing listens there, without hanging', async () => {
      const err = await RedisStore.connect({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 500 }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'GH_ERR_STATE_UNAVAILABLE', data: { endpoint: 'redis://127.0.0.1:1' } });
      expect((err as Error).message).toContain('redis://127.0.0.1:1');
    });

    it('refuses a missing or malformed URL as a config error, and never echoes a password', async () => {
      await expect(RedisStore.connect({ url: '' })).rejects.toMatchObject({ code: 'GH_ERR_CONFIG_INVALID' });
      await expect(RedisStore.connect({ url: 'not a url' })).rejects.toMatchObject({ code: 'GH_ERR_CONFIG_INVALID' });
      const err = await RedisStore.connect({ url: 'http://user:s3cret@127.0.0.1:1' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'GH_ERR_CONFIG_INVALID' });
      expect(JSON.stringify(err) + (err as Error).message).not.toContain('s3cret');
    });

    it('names the endpoint without credentials when the server refuses to connect', async () => {
      const err = await RedisStore.connect({ url: 'redis://:s3cret@127.0.0.1:1', connectTimeoutMs: 500 }).catch((e: unknown) => e);
      expect((err as Error).message).toContain('redis://127.0.0.1:1');
      expect((err as Error).message).not.toContain('s3cret');
    });
  });
});
