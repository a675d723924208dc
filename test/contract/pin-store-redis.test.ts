import { afterAll, beforeAll, describe } from 'vitest';
import { RedisPinStore } from '../../adapters/redis/pin-store.ts';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { runPinStoreContract } from './pin-store.contract.ts';

const available = redisServerAvailable();
let server: RedisServer | undefined;
let namespaces = 0;
const opened: RedisPinStore[] = [];

describe.skipIf(!available)('Redis pin store', () => {
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await Promise.allSettled(opened.map((s) => s.close()));
    await server?.stop();
  });
  runPinStoreContract('redis', async () => {
    const namespace = `pins${++namespaces}`;
    const open = async () => {
      const store = await RedisPinStore.connect({ url: server!.url, namespace });
      opened.push(store);
      return store;
    };
    return { store: await open(), again: open };
  });
});
