import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A real nats-server on a free loopback port, with its own temp store dir (JetStream state lives there). */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>`, without credentials even when `auth` is set. */
  readonly url: string;
  readonly port: number;
  /** Kills the server (SIGKILL: a crash) and leaves it down; `restart` brings it back. */
  kill(): Promise<void>;
  /** Kills the server (SIGKILL: a crash) if it runs, and starts it again on the same port and store dir. */
  restart(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open but nothing answers. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

const BINARY = process.env.GATEHOUSE_NATS_SERVER ?? 'nats-server';

/**
 * Whether a nats-server binary can run here. Missing: the NATS suites skip, loudly, except on CI (`CI=true`),
 * where a missing server is a broken test environment and fails.
 */
export function natsServerAvailable(): boolean {
  const probe = spawnSync(BINARY, ['--version'], { stdio: 'ignore' });
  if (probe.error === undefined && probe.status === 0) return true;
  const missing = `nats-server (${BINARY}) cannot run here; install it or point GATEHOUSE_NATS_SERVER at it.`;
  if (process.env.CI === 'true') throw new Error(`${missing} CI=true, so the NATS adapter suites fail instead of skipping.`);
  console.warn(`\n⚠ ${missing} The NATS adapter suites are SKIPPED.\n`);
  return false;
}

export async function startNatsServer(options: { jetstream?: boolean; auth?: { user: string; pass: string } } = {}): Promise<NatsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-nats-'));
  const port = await freePort();
  const args = ['-a', '127.0.0.1', '-p', String(port)];
  if (options.jetstream) args.push('-js', '-sd', dir);
  if (options.auth) args.push('--user', options.auth.user, '--pass', options.auth.pass);
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
      throw new Error(`nats-server did not start on port ${port}: ${(err as Error).message}\n${output}`);
    }
  };
  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    kill: () => stopChild(child, 'SIGKILL'),
    restart: async () => {
      await stopChild(child, 'SIGKILL');
      await launch();
    },
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    stop: async () => {
      child.kill('SIGCONT');
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
