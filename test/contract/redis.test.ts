import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../adapters/redis/store.ts';
import { RedisApprovalStore } from '../../adapters/redis/approval-store.ts';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { runStoreContract } from './store.contract.ts';
import { runApprovalStoreContract } from './approval-store.contract.ts';

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

  let approvals = '';
  runApprovalStoreContract(
    'redis',
    () => RedisApprovalStore.connect({ url: url(), namespace: (approvals = `approvals${++namespaces}`) }),
    () => RedisApprovalStore.connect({ url: url(), namespace: approvals }),
  );

  describe('connection errors', () => {
    it('names the endpoint when nothing listens there, without hanging', async () => {
      const started = Date.now();
      const err = await RedisStore.connect({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 500 }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'GH_ERR_INTERNAL', data: { endpoint: 'redis://127.0.0.1:1' } });
      expect((err as Error).message).toContain('redis://127.0.0.1:1');
      expect(Date.now() - started).toBeLessThan(3_000);
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
