import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSinkCursors } from '../../adapters/file/sink-cursors.ts';
import { RedisSinkCursors } from '../../adapters/redis/sink-cursors.ts';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { coded } from '../helpers/coded-errors.ts';
import { runSinkCursorsContract } from './sink-cursors.contract.ts';

runSinkCursorsContract('file (embedded)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cursors-'));
  return { cursors: new FileSinkCursors(dir), reopen: async () => new FileSinkCursors(dir) };
});

it('file cursors: a corrupt cursor file is GH_ERR_DATA_CORRUPT, naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cursors-'));
  mkdirSync(join(dir, 'audit-sinks'));
  writeFileSync(join(dir, 'audit-sinks', 'siem.json'), '{"default": "x"');
  await expect(new FileSinkCursors(dir).get('siem', 'default')).rejects.toThrow(coded('GH_ERR_DATA_CORRUPT', { path: join(dir, 'audit-sinks', 'siem.json') }));
});

const available = redisServerAvailable();
let server: RedisServer | undefined;
let namespaces = 0;

describe.skipIf(!available)('Redis sink cursors', () => {
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });
  runSinkCursorsContract('redis', async () => {
    const namespace = `cursors${++namespaces}`;
    const open = () => RedisSinkCursors.connect({ url: server!.url, namespace });
    return { cursors: await open(), reopen: open };
  });
});
