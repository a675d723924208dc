import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** The last lines the process wrote to stderr, for error messages. */
  stderrTail(): string;
  /** Resolves with the first match of `pattern` in a stdout line. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(): Promise<void>;
}

const running = new Set<Child>();

/**
 * Starts a server under test as its own process group, so stopping it also stops what it spawned (its
 * upstream). With `protocolStdout` the caller owns stdout (an MCP stdio connection); otherwise stdout is read
 * for readiness lines. stderr is always drained: a full pipe would stall the child mid-benchmark.
 */
export function spawnChild(name: string, command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; protocolStdout?: boolean }): Child {
  const proc = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  const stderr: string[] = [];
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr.push(...chunk.split('\n').filter(Boolean));
    if (stderr.length > 40) stderr.splice(0, stderr.length - 40);
  });
  const stdoutLines: string[] = [];
  const stdoutWaiters = new Set<() => void>();
  if (!options.protocolStdout) {
    let partial = '';
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      stdoutLines.push(...lines);
      for (const wake of stdoutWaiters) wake();
    });
  }
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const child: Child = {
    name,
    proc,
    pid: proc.pid,
    stderrTail: () => stderr.join('\n'),
    waitForStdout: (pattern, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          for (const line of stdoutLines) {
            const match = line.match(pattern);
            if (match) return finish(() => resolve(match));
          }
          if (proc.exitCode !== null || proc.signalCode !== null) finish(() => reject(new Error(`${name} exited before printing ${pattern}:\n${child.stderrTail()}`)));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`${name} did not print ${pattern} within ${timeoutMs} ms:\n${child.stderrTail()}`))), timeoutMs);
        const finish = (then: () => void) => {
          clearTimeout(timer);
          stdoutWaiters.delete(check);
          proc.off('exit', check);
          then();
        };
        stdoutWaiters.add(check);
        proc.once('exit', check);
        check();
      }),
    stop: async () => {
      running.delete(child);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      killGroup(proc.pid!, 'SIGTERM');
      const killer = setTimeout(() => killGroup(proc.pid!, 'SIGKILL'), 3_000);
      await exited;
      clearTimeout(killer);
      killGroup(proc.pid!, 'SIGKILL'); // anything of the group that outlived its leader
    },
  };
  running.add(child);
  return child;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Kills every process group still running; safe to call from an 'exit' handler (synchronous). */
export function killAll(): void {
  for (const child of running) killGroup(child.pid, 'SIGKILL');
  running.clear();
}

let cleanupInstalled = false;

/** Makes sure no child outlives the benchmark, however it ends; once per process, whoever asks. */
export function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

/** A free loopback port, for servers that cannot report the port they bound (mcp-proxy). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resident set size of one process in MiB, from /proc (Linux). */
export function rssMiB(pid: number): number | undefined {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Clock ticks per second of /proc/<pid>/stat times: USER_HZ, 100 on every mainstream Linux build. */
const USER_HZ = 100;

/** CPU time (user + system, ms) a process has used so far, optionally with its direct children (its upstream). */
export function cpuMs(pid: number, withChildren = false): number | undefined {
  try {
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
    if (withChildren) for (const child of childPids(pid)) ms += cpuMs(child) ?? 0;
    return ms;
  } catch {
    return undefined;
  }
}

function childPids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}
