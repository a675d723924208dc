import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, DEFAULT_POLICY, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { gatehouse } from '../helpers/cli.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import { digestOf } from '../../src/protocol/digest.ts';
import { canonicalize } from '../../src/protocol/jcs.ts';
import { configSchema } from '../../src/config/schema.ts';

let h: Harness;
let echoed: Record<string, unknown>;
beforeAll(async () => {
  h = await startHarness();
  const client = await connectHttp(h.url);
  echoed = await client.callTool({ name: 'fx__echo', arguments: { text: 'plain-value-123' } });
  await client.callTool({ name: 'fx__meta', arguments: { apiKey: 'secret-value-123', pwd: 'secret-value-456', pässword: 'secret-value-789', note: 'visible-note' } });
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
  it('records every job transition and decision, with digests, and by default (redacted) the arguments with secrets masked', () => {
    const types = records().map((r) => r.type);
    expect(types).toEqual(expect.arrayContaining(['job.submitted', 'job.decided', 'job.dispatched', 'job.succeeded', 'approval.created', 'job.approval_required']));
    const text = readFileSync(chainFile(), 'utf8');
    for (const secret of ['secret-value-123', 'secret-value-456', 'secret-value-789']) expect(text).not.toContain(secret);
    // Results are not recorded, only their pointer.
    expect(text).not.toContain('echo: plain-value-123');
    expect(records().find((r) => r.type === 'job.succeeded')?.data.resultPtr).toMatch(/^res:/);
    // audit.recordArguments: redacted (the default): the decision's input keeps the arguments for `policy replay`,
    // every secret-looking key masked, case- and accent-folded.
    const decided = records().filter((r) => r.type === 'job.decided').map((r) => r.data.input as { tool: string; args: Record<string, unknown> });
    expect(decided.find((i) => i.tool === 'fx__meta')?.args).toEqual({ apiKey: '[REDACTED]', pwd: '[REDACTED]', pässword: '[REDACTED]', note: 'visible-note' });
    expect(decided.find((i) => i.tool === 'fx__echo')?.args).toEqual({ text: 'plain-value-123' });
    const submitted = records().find((r) => r.type === 'job.submitted')!;
    expect(submitted.data.argsDigest).toMatch(/^sha256:/);
    expect(submitted.data.session).toMatch(/^[0-9a-f-]{36}$/); // the 2025 client's Mcp-Session-Id
  });

  it("records the result's digest and size (the JCS of what the client got), never the result", () => {
    const echoJob = records().find((r) => r.type === 'job.decided' && (r.data.input as { tool: string }).tool === 'fx__echo')!.jobId;
    const succeeded = records().find((r) => r.type === 'job.succeeded' && r.jobId === echoJob)!;
    const { _meta, ...got } = echoed;
    expect(succeeded.data.resultDigest).toBe(digestOf(got));
    expect(succeeded.data.resultBytes).toBe(Buffer.byteLength(canonicalize(got)));
    expect(JSON.stringify(succeeded)).not.toContain('echo: plain-value-123');
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

describe('audit.recordArguments', () => {
  // One call with secrets under secret-looking keys, a value the policy's `redact.args` names, and a plain value.
  const args = { password: 'pw-value-1', pässword: 'pw-value-2', pwd: 'pw-value-3', note: 'ruled-value', text: 'plain-value' };
  const policy = () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-record-args-'));
    writeFileSync(
      join(dir, 'policy.yaml'),
      'version: 2\ndefault: allow\nrules:\n  - { id: hide-note, match: { tools: [fx__meta] }, effect: allow_with_constraints, constraints: { redact: { args: [note] } } }\n',
    );
    return dir;
  };
  async function recordedWith(recordArguments: unknown): Promise<{ text: string; decided: AuditRecord; submitted: AuditRecord; dataDir: string; close(): Promise<void> }> {
    // Through the config schema, which reads the old booleans.
    const harness = await startHarness({ policies: [policy()], audit: configSchema.parse({ audit: { recordArguments } }).audit });
    const client = await connectHttp(harness.url);
    await client.callTool({ name: 'fx__meta', arguments: args });
    await client.close();
    await harness.gateway.audit.flush();
    const text = readFileSync(join(harness.dataDir, 'audit', 'default.jsonl'), 'utf8');
    const all = text.trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    return { text, decided: all.find((r) => r.type === 'job.decided')!, submitted: all.find((r) => r.type === 'job.submitted')!, dataDir: harness.dataDir, close: () => harness.close() };
  }

  it.each([['redacted'], [true]])('%s: masks secret-looking keys and the rules\' redact.args, keeps the rest', async (mode) => {
    const run = await recordedWith(mode);
    try {
      expect((run.decided.data.input as { args: unknown }).args).toEqual({ password: '[REDACTED]', pässword: '[REDACTED]', pwd: '[REDACTED]', note: '[REDACTED]', text: 'plain-value' });
      for (const hidden of ['pw-value-1', 'pw-value-2', 'pw-value-3', 'ruled-value']) expect(run.text).not.toContain(hidden);
    } finally {
      await run.close();
    }
  });

  it('full: keeps the arguments whole except what the rules\' redact.args name', async () => {
    const run = await recordedWith('full');
    try {
      expect((run.decided.data.input as { args: unknown }).args).toEqual({ ...args, note: '[REDACTED]' });
      expect(run.text).not.toContain('ruled-value');
      const replay = await gatehouse(['policy', 'replay', '--policy', DEFAULT_POLICY, '--data-dir', run.dataDir, '--json']);
      expect(JSON.parse(replay.stdout)).toMatchObject({ replayed: 1, skipped: 0 });
    } finally {
      await run.close();
    }
  });

  it.each([['digest'], [false]])('%s: keeps only the digest of the arguments, and replay reports such decisions as not replayable', async (mode) => {
    const run = await recordedWith(mode);
    try {
      expect(run.decided.data.input).not.toHaveProperty('args');
      expect(run.submitted.data.argsDigest).toBe(digestOf(args));
      for (const value of Object.values(args)) expect(run.text).not.toContain(value);
      const replay = await gatehouse(['policy', 'replay', '--policy', DEFAULT_POLICY, '--data-dir', run.dataDir, '--json']);
      expect(replay.code).toBe(0);
      expect(JSON.parse(replay.stdout)).toMatchObject({ replayed: 0, skipped: 1 });
    } finally {
      await run.close();
    }
  });
});
