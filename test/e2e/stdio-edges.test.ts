// `gatehouse wrap` against a hostile or vanishing client (issue 10, item 14), as a real child process: a client
// that closes its end of stdout mid-answer, and arguments nested 100,000 deep.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_UPSTREAM, ROOT, waitFor } from '../helpers/gateway-harness.ts';
import { GATEHOUSE_BIN } from '../helpers/cli.ts';

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } });

function startWrap(): { child: ChildProcess; dataDir: string; replies: Record<string, any>[]; stderr: () => string } {
  const dataDir = mkdtempSync(join(tmpdir(), 'gh-wrap-edge-'));
  const child = spawn(process.execPath, [GATEHOUSE_BIN, 'wrap', '--data-dir', dataDir, '--name', 'fx', '--', process.execPath, '--import', 'tsx', FIXTURE_UPSTREAM], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const replies: Record<string, any>[] = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) if (line) replies.push(JSON.parse(line));
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return { child, dataDir, replies, stderr: () => stderr };
}

const reply = (replies: Record<string, any>[], id: number) => replies.find((r) => r.id === id);

/** The fixture upstream among a process's direct children (tsx runs an esbuild service beside it), from /proc. */
function upstreamOf(pid: number): number | undefined {
  const children = readdirSync(`/proc/${pid}/task`).flatMap((tid) => readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  return children.find((child) => {
    try {
      return readFileSync(`/proc/${child}/cmdline`, 'utf8').includes(FIXTURE_UPSTREAM);
    } catch {
      return false; // it exited meanwhile
    }
  });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('gatehouse wrap and its client', () => {
  it('shuts down cleanly, exit 0, when the client closes stdout mid-answer: upstream stopped, audit flushed', async () => {
    const { child, dataDir, replies, stderr } = startWrap();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.stdin!.write(`${INIT}\n`);
    await waitFor(() => reply(replies, 1) !== undefined, 'the initialize answer');
    child.stdin!.write('{"jsonrpc":"2.0","method":"notifications/initialized"}\n');
    await waitFor(() => upstreamOf(child.pid!) !== undefined, 'the upstream to run');
    const upstream = upstreamOf(child.pid!)!;
    // The answer (4 MB) is far larger than a pipe holds: the reader goes away while it is being written.
    let received = 0;
    child.stdout!.on('data', (chunk: string) => (received += chunk.length));
    child.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'fx__big', arguments: { bytes: 4_000_000 } } })}\n`);
    await waitFor(() => received > 100_000, 'the answer to start', 60_000); // a bound on failure: 4 MB through two processes on a loaded machine
    child.stdout!.destroy();
    expect(await exited).toBe(0);
    expect(stderr()).not.toMatch(/EPIPE|Uncaught|Unhandled/);
    expect(alive(upstream), `upstream ${upstream}`).toBe(false);
    // The call's records reached the disk before the exit, whole.
    const chain = readFileSync(join(dataDir, 'audit', 'default.jsonl'), 'utf8');
    expect(chain.endsWith('\n')).toBe(true);
    const types = chain.trim().split('\n').map((line) => JSON.parse(line).type as string);
    expect(types).toContain('job.succeeded');
  });

  it('shuts down the same way, exit 0, when the client closes stdin', async () => {
    const { child, replies } = startWrap();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.stdin!.write(`${INIT}\n`);
    await waitFor(() => reply(replies, 1) !== undefined && upstreamOf(child.pid!) !== undefined, 'the initialize answer and the upstream');
    const upstream = upstreamOf(child.pid!)!;
    child.stdin!.end();
    expect(await exited).toBe(0);
    expect(alive(upstream), `upstream ${upstream}`).toBe(false);
  }, 60_000);

  it('answers arguments nested 100,000 deep with -32602 GH_ERR_NESTING_TOO_DEEP and keeps serving', async () => {
    const { child, replies } = startWrap();
    try {
      child.stdin!.write(`${INIT}\n`);
      const deep = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
      child.stdin!.write(`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"x","deep":${deep}}}}\n`);
      child.stdin!.write(`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"x"},"_meta":{"deep":${deep}}}}\n`);
      child.stdin!.write('{"jsonrpc":"2.0","id":7,"method":"ping"}\n');
      await waitFor(() => reply(replies, 7) !== undefined, 'the ping after the deep calls');
      for (const id of [5, 6]) expect(reply(replies, id)).toMatchObject({ id, error: { code: -32602, data: { code: 'GH_ERR_NESTING_TOO_DEEP' } } });
      expect(reply(replies, 7)).toMatchObject({ result: {} });
    } finally {
      child.kill();
    }
  }, 60_000);
});
