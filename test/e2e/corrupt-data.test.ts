// The README: "`GH_ERR_DATA_CORRUPT`: a file in the data dir does not parse. The message names it; Gatehouse never
// deletes or rewrites it." Here an approval file, an audit chain and a dead letter are corrupted, the gateway and
// every CLI command that reads or changes them run against them, and the bytes on disk are compared before and after.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { FileJobLedger } from '../../adapters/file/job-ledger.ts';
import { gatehouse } from '../helpers/cli.ts';
import { auditOf, connectHttp, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { deadLetter } from '../contract/job-ledger.contract.ts';
import { approvalId, text, type ToolResult } from '../helpers/distributed.ts';

/** The file's digest, or `gone`: what must not change. */
const sha256 = (path: string) => (existsSync(path) ? createHash('sha256').update(readFileSync(path)).digest('hex') : 'gone');

// Every case runs the real CLI several times, each a Node process loading tsx: slow on a loaded machine.
const SLOW = 180_000;

const opened: Array<{ close(): Promise<void> }> = [];
const closeAll = () => Promise.allSettled(opened.splice(0).map((o) => o.close()));
afterEach(closeAll);

async function gateway(dataDir: string): Promise<{ h: Harness; client: Client }> {
  const h = await startHarness({ dataDir });
  opened.push(h);
  const client = await connectHttp(h.url);
  opened.push(client);
  return { h, client };
}

const call = (client: Client, name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args }) as Promise<ToolResult>;

/** What a CLI run says, for the assertions: its exit code, and whether it names the code and the file. */
async function run(args: string[], file: string) {
  const { code, stdout, stderr } = await gatehouse(args);
  const said = stdout + stderr;
  return { code, coded: said.includes('GH_ERR_DATA_CORRUPT'), namesFile: said.includes(file), said };
}

/** Each `gatehouse <command> <args…>` fails (exit 1) with GH_ERR_DATA_CORRUPT naming the file. */
async function expectReported(command: string, runs: string[][], dataDir: string, file: string): Promise<void> {
  for (const args of runs) {
    expect({ args, ...(await run([command, ...args, '--data-dir', dataDir], file)) }).toMatchObject({ args, code: 1, coded: true, namesFile: true });
  }
}

describe('a corrupt approval file', () => {
  it('is reported by name, with GH_ERR_DATA_CORRUPT, and left as it is by the gateway and every approvals command', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-corrupt-apr-'));
    const first = await gateway(dataDir);
    const asked = await call(first.client, 'fx__write', { key: 'k', value: 'v' });
    expect(asked).toMatchObject({ _meta: { 'gatehouse/approval': { state: 'pending' } } });
    const id = approvalId(asked);
    await closeAll();
    const file = join(dataDir, 'approvals', `${id}.json`);
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 40)); // cut mid-record
    const before = sha256(file);

    await expectReported('approvals', [['list'], ['list', '--all'], ['show', id], ['approve', id, '--as', 'bob'], ['deny', id, '--as', 'bob']], dataDir, `${id}.json`);

    // The gateway on this data dir: the same call finds the approval it would reuse corrupt, and is refused with
    // the code naming the file; the approvals API answers with the code (its message names no path).
    const { h, client } = await gateway(dataDir);
    const again = await call(client, 'fx__write', { key: 'k', value: 'v' });
    expect(again.isError).toBe(true);
    expect(again._meta?.['gatehouse/error']).toMatchObject({ code: 'GH_ERR_DATA_CORRUPT' });
    expect(text(again)).toContain(`${id}.json`);
    const listed = await fetch(h.url.replace(/\/mcp$/, '/api/approvals?state=all'));
    expect({ status: listed.status, body: await listed.json() }).toMatchObject({ status: 500, body: { error: { code: 'GH_ERR_DATA_CORRUPT' } } });
    await closeAll();
    expect(h.writes()).toBe(0);

    expect(sha256(file)).toBe(before);
  }, SLOW);
});

describe('a corrupt dead letter', () => {
  it('is reported by name, with GH_ERR_DATA_CORRUPT, and left as it is by every dlq command and the gateway', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-corrupt-dlq-'));
    const ledger = new FileJobLedger(dataDir);
    const jobId = '01JDEAD0000000000000000009';
    await ledger.deadLetter(deadLetter(jobId, 1_000));
    // Beside it, a sound one queued for retry: once the gateway has run it, its reconciler has read the queue.
    const sound = '01JDEAD0000000000000000010';
    const context = { server: 'fx', tool: 'echo', arguments: { text: 'retried' }, constraints: {}, wantsProgress: false };
    await ledger.deadLetter(deadLetter(sound, 2_000, { tenant: 'default', principal: 'tester', server: 'fx', tool: 'echo', context }));
    await ledger.requestRetry(sound, 'bob', Date.now());
    await ledger.close();
    const file = join(dataDir, 'dlq', `${jobId}.json`);
    writeFileSync(file, '{"jobId": "01JDEAD0000000000000000009", "co');
    const before = sha256(file);

    await expectReported('dlq', [['list'], ['show', jobId], ['retry', jobId, '--as', 'bob'], ['drop', jobId, '--as', 'bob']], dataDir, `${jobId}.json`);
    await gateway(dataDir);
    await waitFor(async () => (await auditOf(dataDir, 'default')).some((r) => r.type === 'dlq.retried' && r.jobId === sound), 'the sound retry to be run');
    await closeAll();

    expect(sha256(file)).toBe(before);
  }, SLOW);
});

describe('a corrupt audit chain', () => {
  it('is reported by name, with GH_ERR_DATA_CORRUPT, and left as it is by the gateway and every audit command', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-corrupt-audit-'));
    const first = await gateway(dataDir);
    expect(text(await call(first.client, 'fx__echo', { text: 'one' }))).toBe('echo: one');
    await closeAll();
    const file = join(dataDir, 'audit', 'default.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n');
    // The last record garbled, its line whole (not a torn write a crash leaves).
    lines[lines.length - 2] = lines[lines.length - 2].replace('"seq"', '"seq');
    writeFileSync(file, lines.join('\n'));
    const before = sha256(file);

    // `verify` reports it as where the chain breaks (file and line); the others with the code.
    expect(await run(['audit', 'verify', '--data-dir', dataDir], 'default.jsonl:')).toMatchObject({ code: 1, namesFile: true });
    await expectReported('audit', [['tail'], ['export', '--out', join(dataDir, 'export.jsonl')]], dataDir, 'default.jsonl');
    // The gateway on this data dir cannot find the chain's head, so it appends nothing to the file.
    const { client } = await gateway(dataDir);
    await call(client, 'fx__echo', { text: 'two' }).catch(() => undefined);
    await closeAll();

    expect(sha256(file)).toBe(before);
  }, SLOW);
});
