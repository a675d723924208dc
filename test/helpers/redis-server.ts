import { binaryAvailable, startServerProcess, type ServerProcess } from './server-process.ts';

/**
 * A real redis-server on a free loopback port, in its own temp dir. Without persistence by default; with
 * `persistent`, an append-only file fsynced on every write, so `restart` (a SIGKILL crash) keeps everything
 * acknowledged.
 */
export interface RedisServer extends ServerProcess {
  readonly url: string;
}

const BINARY = process.env.GATEHOUSE_REDIS_SERVER ?? 'redis-server';

/** Whether redis-server can run here (the Redis suites skip loudly without it, and fail under CI=true). */
export const redisServerAvailable = (): boolean => binaryAvailable(BINARY, 'GATEHOUSE_REDIS_SERVER', 'Redis adapter suites');

export async function startRedisServer(options: { persistent?: boolean } = {}): Promise<RedisServer> {
  const persistence = options.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const server = await startServerProcess(BINARY, (port, dir) => ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...persistence, '--protected-mode', 'yes']);
  return Object.assign(server, { url: `redis://127.0.0.1:${server.port}` });
}
