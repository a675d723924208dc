import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, DEFAULT_POLICY, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { gatehouse } from '../helpers/cli.ts';
import type { AuditRecord } from '../../src/audit/record.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  const client = await connectHttp(h.url);
  await client.callTool({ name: 'fx__echo', arguments: { text: 'plain-value-123' } });
  await client.callTool({ name: 'fx__meta', arguments: { apiKey: 'secret-value-123', note: 'visible-note' } });
  await client.callTool({ name: 'fx__write', arguments: { key: 'k', value: 'v' } });
  await client.close();
  await h.gateway.audit.flush();
});
afterAll(async () => {
  await h?.close();
});

const chainFile = () => join(h.dataDir, 'audit', 'default.jsonl');
const records = () => readFileSync(chainFile(), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);

describe('audit trail', () => {
  it('records every job transition and decision, with digests, and arguments only with secrets redacted', () => {
    const types = records().map((r) => r.type);
    expect(types).toEqual(expect.arrayContaining(['job.submitted', 'job.decided', 'job.dispatched', 'job.succeeded', 'approval.created', 'job.approval_required']));
    const text = readFileSync(chainFile(), 'utf8');
    expect(text).not.toContain('secret-value-123');
    // The decision's input keeps the arguments for `policy replay`, secret-looking keys redacted.
    const decided = records().filter((r) => r.type === 'job.decided').map((r) => r.data.input as { tool: string; args: Record<string, unknown> });
    expect(decided.find((i) => i.tool === 'fx__meta')?.args).toEqual({ apiKey: '[REDACTED]', note: 'visible-note' });
    expect(decided.find((i) => i.tool === 'fx__echo')?.args).toEqual({ text: 'plain-value-123' });
    const submitted = records().find((r) => r.type === 'job.submitted')!;
    expect(submitted.data.argsDigest).toMatch(/^sha256:/);
    expect(submitted.data.session).toMatch(/^[0-9a-f-]{36}$/); // the 2025 client's Mcp-Session-Id
  });

  it('verifies, and `audit verify` finds one tampered byte by sequence number', async () => {
    expect(await gatehouse(['audit', 'verify', '--data-dir', h.dataDir])).toMatchObject({ code: 0 });
    await h.gateway.audit.flush();
    const original = readFileSync(chainFile(), 'utf8');
    const lines = original.split('\n');
    const at = lines[2].indexOf('"actor":"') + '"actor":"'.length;
    lines[2] = lines[2].slice(0, at) + (lines[2][at] === 'X' ? 'Y' : 'X') + lines[2].slice(at + 1); // one changed byte in record 3
    writeFileSync(chainFile(), lines.join('\n'));
    const broken = await gatehouse(['audit', 'verify', '--data-dir', h.dataDir]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain('BROKEN at seq 3');
    writeFileSync(chainFile(), original);
  });

  it('exports a chain that verifies offline, and tails the newest records', async () => {
    const out = join(h.dataDir, 'export.jsonl');
    expect((await gatehouse(['audit', 'export', '--out', out, '--data-dir', h.dataDir])).code).toBe(0);
    expect(await gatehouse(['audit', 'verify', '--file', out])).toMatchObject({ code: 0 });
    const tail = await gatehouse(['audit', 'tail', '-n', '2', '--data-dir', h.dataDir]);
    expect(tail.stdout.trim().split('\n')).toHaveLength(2);
  });
});

describe('when the audit trail cannot be written', () => {
  it('refuses calls (fail closed), says so on /healthz, and keeps every event for later', async () => {
    const { startHarness: start } = await import('../helpers/gateway-harness.ts');
    const broken = await start({ limits: { maxMessageBytes: 4 * 1024 * 1024, maxAuditBacklog: 5 } });
    try {
      await broken.gateway.audit.flush();
      // A torn last line: every append is refused until a human looks at the file.
      const file = join(broken.dataDir, 'audit', 'default.jsonl');
      writeFileSync(file, '{"torn":');
      const client = await connectHttp(broken.url);
      await client.callTool({ name: 'fx__echo', arguments: { text: 'a' } });
      await client.callTool({ name: 'fx__echo', arguments: { text: 'b' } });
      await broken.gateway.audit.flush();
      expect(broken.gateway.audit.backlog).toBeGreaterThanOrEqual(5);
      const refused = await client.callTool({ name: 'fx__echo', arguments: { text: 'c' } });
      expect(refused.isError).toBe(true);
      expect((refused.content as { text: string }[])[0].text).toContain('GH_ERR_AUDIT_UNAVAILABLE');
      const health = await fetch(broken.url.replace('/mcp', '/healthz'));
      expect(health.status).toBe(503);
      await client.close();
    } finally {
      await broken.close().catch(() => undefined); // close reports the events it could not write
    }
  });
});

describe('audit tail --follow', () => {
  it('prints records as they are appended by the running gateway', async () => {
    const { spawn } = await import('node:child_process');
    const { GATEHOUSE_BIN } = await import('../helpers/cli.ts');
    const child = spawn(process.execPath, [GATEHOUSE_BIN, 'audit', 'tail', '-n', '0', '--follow', '--data-dir', h.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      // A call made before it has read what exists and started following is read as existing, so `-n 0` skips
      // it (or part of it): call until one call's records are all printed, rather than guess how long the process
      // takes to start.
      const printedWhole = () => {
        const types = new Map<string, Set<string>>();
        for (const line of out.split('\n').filter((l) => l.endsWith('}'))) {
          const record = JSON.parse(line) as AuditRecord;
          if (record.jobId) types.set(record.jobId, (types.get(record.jobId) ?? new Set()).add(record.type));
        }
        return [...types.values()].some((seen) => ['job.submitted', 'job.decided', 'job.dispatched', 'job.succeeded'].every((t) => seen.has(t)));
      };
      const client = await connectHttp(h.url);
      await waitFor(async () => {
        await client.callTool({ name: 'fx__echo', arguments: { text: 'followed' } });
        await h.gateway.audit.flush();
        const until = Date.now() + 2_000;
        while (!printedWhole() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
        return printedWhole();
      }, 'audit tail --follow to print a whole call', 45_000);
      await client.close();
      expect(printedWhole()).toBe(true);
    } finally {
      child.kill();
    }
  });
});

describe('audit.recordArguments: false', () => {
  it('keeps only the digest of the arguments, and replay reports such decisions as not replayable', async () => {
    const quiet = await startHarness({ audit: { recordArguments: false } });
    try {
      const client = await connectHttp(quiet.url);
      await client.callTool({ name: 'fx__echo', arguments: { text: 'unrecorded-text' } });
      await client.close();
      await quiet.gateway.audit.flush();
      const text = readFileSync(join(quiet.dataDir, 'audit', 'default.jsonl'), 'utf8');
      expect(text).not.toContain('unrecorded-text');
      expect(text).toContain('"type":"job.decided"');
      const replay = await gatehouse(['policy', 'replay', '--policy', DEFAULT_POLICY, '--data-dir', quiet.dataDir, '--json']);
      expect(replay.code).toBe(0);
      expect(JSON.parse(replay.stdout)).toMatchObject({ replayed: 0, skipped: 1 });
    } finally {
      await quiet.close();
    }
  });
});
