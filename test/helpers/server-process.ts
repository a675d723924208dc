import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real server binary (redis-server, nats-server) on a free loopback port with its own temp dir, which a test
 * can crash, freeze and bring back: what the Redis and NATS helpers share.
 */
export interface ServerProcess {
  readonly port: number;
  readonly dir: string;
  /** Kills the server (SIGKILL: a crash) and leaves it down; `restart` brings it back. */
  kill(): Promise<void>;
  /** Kills the server (SIGKILL) if it runs, and starts it again on the same port and dir. */
  restart(): Promise<void>;
  /**
   * Freezes the process (SIGSTOP): connections stay open but nothing answers. Resolves once the kernel reports it
   * stopped: the signal is delivered asynchronously, and a server still running on the other core could answer one
   * more request.
   */
  pause(): Promise<void>;
  /** Thaws it (SIGCONT), resolving once it runs again. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Whether `binary` can run here. Missing: the suites that need it skip, loudly, except on CI (`CI=true`), where a
 * missing server is a broken test environment and fails.
 */
export function binaryAvailable(binary: string, overrideVar: string, suites: string): boolean {
  const probe = spawnSync(binary, ['--version'], { stdio: 'ignore' });
  if (probe.error === undefined && probe.status === 0) return true;
  const missing = `${binary} cannot run here; install it or point ${overrideVar} at it.`;
  if (process.env.CI === 'true') throw new Error(`${missing} CI=true, so the ${suites} fail instead of skipping.`);
  console.warn(`\n⚠ ${missing} The ${suites} are SKIPPED.\n`);
  return false;
}

/** How a server is started beyond its args: as another user, after its dir is prepared (PostgreSQL's initdb). */
export interface ServerProcessOptions {
  /** Run as this user (PostgreSQL refuses to run as root). */
  user?: { uid: number; gid: number };
  /** Runs once before the first start, with the port and the server's (empty) temp dir. */
  prepare?(port: number, dir: string): void;
  /** How long the first start may take to accept connections (ms). */
  startTimeoutMs?: number;
}

/** Starts `binary` with the args `argsFor(port, dir)` builds, and resolves once it accepts connections. */
export async function startServerProcess(binary: string, argsFor: (port: number, dir: string) => string[], options: ServerProcessOptions = {}): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-server-'));
  const port = await freePort();
  const args = argsFor(port, dir);
  try {
    options.prepare?.(port, dir);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let child: ChildProcess;
  const launch = async () => {
    child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(options.user ?? {}) });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await waitForPort(child, port, options.startTimeoutMs ?? 10_000);
    } catch (err) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`${binary} did not start on port ${port}: ${(err as Error).message}\n${output}`);
    }
  };
  await launch();
  return {
    port,
    dir,
    kill: () => stopChild(child, 'SIGKILL'),
    restart: async () => {
      await stopChild(child, 'SIGKILL');
      await launch();
    },
    pause: async () => {
      child.kill('SIGSTOP');
      await untilState(child, (state) => state === 'T', 'stopped');
    },
    resume: async () => {
      child.kill('SIGCONT');
      await untilState(child, (state) => state !== 'T', 'running');
    },
    stop: async () => {
      child.kill('SIGCONT');
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Polls the state letter (R, S, T …) of every thread of the process (each /proc/<pid>/task/<tid>/stat) until `wanted` holds for
 * all of them, for at most 5 s: a multi-threaded server is frozen only once each of its threads has stopped.
 */
async function untilState(child: ChildProcess, wanted: (state: string) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  const stateOf = (stat: string) => stat.charAt(stat.lastIndexOf(')') + 2); // after "(comm) ", comm may hold spaces
  for (;;) {
    const tasks = readdirSync(`/proc/${child.pid}/task`);
    if (tasks.every((task) => wanted(stateOf(readFileSync(`/proc/${child.pid}/task/${task}/stat`, 'utf8'))))) return;
    if (Date.now() > deadline) throw new Error(`process ${child.pid} was not ${what} within 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A loopback port nothing listens on now. */
export async function freePort(): Promise<number> {
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
