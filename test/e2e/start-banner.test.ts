import { spawn, execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectHttp, ROOT, waitFor } from '../helpers/gateway-harness.ts';
import { GATEHOUSE_BIN, gatehouse } from '../helpers/cli.ts';
import { writeStartConfig } from '../helpers/start-process.ts';

const ENDPOINT = /MCP endpoint \(Streamable HTTP\): (\S+)/;

/** `gatehouse start` with extra arguments and environment; resolves once it serves (or has exited). */
async function start(args: string[], env: Record<string, string>, cwd: string) {
  const child = spawn(process.execPath, [GATEHOUSE_BIN, 'start', ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  await waitFor(() => ENDPOINT.test(out) || exited(), 'gatehouse start to serve');
  return {
    output: () => out,
    url: ENDPOINT.exec(out)?.[1],
    stop: async () => {
      if (exited()) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** A config whose own listen.http cannot serve (an address of no interface here, TEST-NET-1): only an override can. */
const UNBINDABLE = '192.0.2.1:8787';

function unusableConfig(): { dir: string; config: string } {
  const { dir, config } = writeStartConfig({ upstream: 'notes', script: join(ROOT, 'examples/demo/server.ts') });
  writeFileSync(config, `listen: { http: "${UNBINDABLE}" }\ndataDir: data\npolicies: [${JSON.stringify(join(ROOT, 'policies/default.yaml'))}]\n`);
  return { dir, config };
}

/** Runs a command line the banner printed, as the user would from the same folder. */
function runPrinted(line: string, cwd: string): Promise<number> {
  const [command, ...args] = line.trim().split(/\s+/);
  return new Promise((resolve) => execFile(command, args, { cwd, timeout: 30_000 }, (error) => resolve(error ? Number(error.code ?? 1) : 0)));
}

describe('gatehouse start: where it listens, and what its banner tells', () => {
  it('--listen wins over GATEHOUSE_LISTEN, which wins over the file', async () => {
    const { dir, config } = unusableConfig();
    const byFlag = await start(['--config', config, '--listen', '127.0.0.1:0'], { GATEHOUSE_LISTEN: UNBINDABLE }, dir);
    try {
      expect(byFlag.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
      const client = await connectHttp(byFlag.url!);
      await client.close();
    } finally {
      await byFlag.stop();
    }
    const byVariable = await start(['--config', config], { GATEHOUSE_LISTEN: '127.0.0.1:0' }, dir);
    try {
      expect(byVariable.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    } finally {
      await byVariable.stop();
    }
  });

  it('refuses a --listen that is no address as bad usage, and a bad GATEHOUSE_LISTEN as a config error', async () => {
    const { dir, config } = unusableConfig();
    const flag = await gatehouse(['start', '--config', config, '--listen', 'localhost'], { cwd: dir });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('--listen');
    const variable = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, [GATEHOUSE_BIN, 'start', '--config', config], { cwd: dir, env: { ...process.env, GATEHOUSE_LISTEN: 'nowhere' }, timeout: 30_000 }, (error, _out, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, stderr }),
      ),
    );
    expect(variable.code).toBe(1);
    expect(variable.stderr).toContain('GH_ERR_CONFIG_INVALID');
  });

  it('prints the console and the approvals page, and state commands that run from where the user is', async () => {
    const { dir, config } = writeStartConfig({ upstream: 'notes', script: join(ROOT, 'examples/demo/server.ts') });
    const started = await start(['--config', config], {}, dir);
    try {
      const out = started.output();
      const page = /Approvals page:\s+(\S+)/.exec(out)?.[1];
      expect(page).toBe(`${new URL(started.url!).origin}/approvals`);
      expect((await fetch(page!)).status).toBe(200);
      const consolePage = /Console:\s+(\S+)/.exec(out)?.[1];
      expect(consolePage).toBe(`${new URL(started.url!).origin}/`);
      expect(await (await fetch(consolePage!)).text()).toContain('Overview');
      const list = /Approvals:\s+(.+? approvals list.*?)\s{3}/.exec(out)?.[1];
      const tail = /Audit:\s+(.+)$/m.exec(out)?.[1].replace('--follow', '-n 1');
      expect(list).toBeDefined();
      expect(tail).toBeDefined();
      // From the config's folder, which is not the clone: the printed lines carry the script's path and the config.
      expect(await runPrinted(list!, dir)).toBe(0);
      expect(await runPrinted(tail!, dir)).toBe(0);
    } finally {
      await started.stop();
    }
  });
});
