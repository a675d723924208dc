import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real redis-server on a free loopback port, in its own temp dir. Without persistence by default; with
 * `persistent`, an append-only file fsynced on every write, so `restart` keeps everything acknowledged.
 */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Kills the server (SIGKILL: a crash, not a clean shutdown) and starts it again on the same port and dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const BINARY = process.env.GATEHOUSE_REDIS_SERVER ?? 'redis-server';

/**
 * Whether a redis-server binary can run here. Missing: the Redis suites skip, loudly, except on CI
 * (`CI=true`), where a missing server is a broken test environment and fails.
 */
export function redisServerAvailable(): boolean {
  const probe = spawnSync(BINARY, ['--version'], { stdio: 'ignore' });
  if (probe.error === undefined && probe.status === 0) return true;
  const missing = `redis-server (${BINARY}) cannot run here; install it or point GATEHOUSE_REDIS_SERVER at it.`;
  if (process.env.CI === 'true') throw new Error(`${missing} CI=true, so the Redis adapter suites fail instead of skipping.`);
  console.warn(`\n⚠ ${missing} The Redis adapter suites are SKIPPED.\n`);
  return false;
}

export async function startRedisServer(options: { persistent?: boolean } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-redis-'));
  const port = await freePort();
  const persistence = options.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...persistence, '--protected-mode', 'yes'];
  let child: ChildProcess;
  const launch = async () => {
    child = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await waitForPort(child, port, 10_000);
    } catch (err) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`redis-server did not start on port ${port}: ${(err as Error).message}\n${output}`);
    }
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    restart: async () => {
      await stopChild(child, 'SIGKILL');
      await launch();
    },
    stop: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}
