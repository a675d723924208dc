import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICY, PROCESS_START_MS, ROOT, TEST_DECISION_BUDGET_MS, waitFor } from './gateway-harness.ts';
import { GATEHOUSE_BIN } from './cli.ts';

/**
 * A config for a real `gatehouse start` in a fresh folder: HTTP on a free port, data in `data/`, one stdio
 * upstream running a TypeScript server file, the given policy. Returns the folder and the config's path.
 */
export function writeStartConfig(options: { upstream: string; script: string; env?: Record<string, string>; policy?: string }): { dir: string; config: string; dataDir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gh-start-'));
  const config = join(dir, 'gatehouse.yaml');
  const env = options.env ? `, env: ${JSON.stringify(options.env)}` : '';
  writeFileSync(
    config,
    [
      'listen: { http: "127.0.0.1:0" }',
      'dataDir: data',
      'upstreams:',
      `  ${options.upstream}: { command: ${JSON.stringify(process.execPath)}, args: ["--import", "tsx", ${JSON.stringify(options.script)}], cwd: ${JSON.stringify(ROOT)}${env} }`,
      `policies: [${JSON.stringify(options.policy ?? DEFAULT_POLICY)}]`,
      `kernel: { decisionBudget: ${TEST_DECISION_BUDGET_MS} }`,
      'log: { level: warn }',
    ].join('\n'),
  );
  return { dir, config, dataDir: join(dir, 'data') };
}

export interface StartedProcess {
  child: ChildProcess;
  url: string;
  /** What it printed so far, stdout and stderr together. */
  output(): string;
  /** SIGTERM, and wait for the exit (a no-op when it already exited). */
  stop(): Promise<void>;
}

const ENDPOINT = /MCP endpoint \(Streamable HTTP\): (\S+)/;

/** A real `gatehouse start` in its own process; resolves once it serves, with its MCP URL. */
export async function startProcess(config: string, cwd: string): Promise<StartedProcess> {
  const child = spawn(process.execPath, [GATEHOUSE_BIN, 'start', '--config', config], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const match = await waitFor(() => ENDPOINT.test(out) || exited(), 'gatehouse start to serve', PROCESS_START_MS).then(
    () => ENDPOINT.exec(out),
    () => null,
  );
  if (!match) {
    // Not left running behind a failed test, where it would slow every later one.
    child.kill('SIGKILL');
    throw new Error(`gatehouse start did not serve:\n${out}`);
  }
  return {
    child,
    url: match[1],
    output: () => out,
    stop: async () => {
      if (exited()) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
