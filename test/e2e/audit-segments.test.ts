import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import { ChainWriter } from '../../src/audit/chain-writer.ts';
import { checkpointOptions } from '../../src/runtime/audit-signing.ts';
import { defaultConfig } from '../../src/config/load.ts';
import { hashRecord } from '../../src/protocol/audit-chain.ts';
import type { AuditEvent, AuditRecord } from '../../src/protocol/audit-record.ts';
import { auditOf, connectHttp, startHarness, waitFor } from '../helpers/gateway-harness.ts';
import { firstOfEach, sinkConfig, sinkReceiver } from '../helpers/sink-receiver.ts';
import { gatehouse, pubkeyFile } from '../helpers/cli.ts';

// `gatehouse audit verify` and `export` over a chain rolled into segments and pruned by retention: the kept records
// verify from the signed anchor, online and offline, and every way of losing what links them is BROKEN.

const event = (i: number): AuditEvent => ({ tenant: 'default', at: 1_800_000_000_000 + i, type: `e${i}`, actor: 'a', data: { i, pad: 'x'.repeat(100) } });

/** A data dir whose chain was sealed into 2 KiB segments and pruned to 10 KiB, as a gateway with those settings leaves it. */
async function prunedChain(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-seg-e2e-'));
  const store = new FileAuditStore(dir, { fsync: 'off', segmentBytes: 2048, retention: { maxBytes: 10 * 1024 } });
  const writer = new ChainWriter(store, checkpointOptions(defaultConfig({ dataDir: dir }), { atClose: true }));
  for (let i = 0; i < 150; i += 5) await writer.write(new Map([['default', Array.from({ length: 5 }, (_, k) => event(i + k))]]));
  await writer.seal();
  await writer.close();
  return dir;
}

const anchorPath = (dir: string) => join(dir, 'audit', 'default.anchor');
const segments = (dir: string) => readdirSync(join(dir, 'audit', 'default.segments')).sort();

describe('audit verify over segments and retention', () => {
  it('verifies from the anchor, reports it, and an export verifies offline with the public key', async () => {
    const dir = await prunedChain();
    const anchor = JSON.parse(readFileSync(anchorPath(dir), 'utf8')) as AuditRecord;
    const verified = await gatehouse(['audit', 'verify', '--data-dir', dir]);
    expect(verified.stdout).toContain(`anchored by checkpoint seq ${anchor.seq}`);
    expect(verified.code).toBe(0);

    const out = join(dir, 'export.jsonl');
    expect((await gatehouse(['audit', 'export', '--out', out, '--data-dir', dir])).code).toBe(0);
    const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean);
    expect(JSON.parse(lines[0])).toEqual({ gatehouseExportAnchor: anchor });
    expect((JSON.parse(lines[1]) as AuditRecord).seq).toBe(anchor.seq + 1);
    const pub = await pubkeyFile(dir);
    const offline = await gatehouse(['audit', 'verify', '--file', out, '--pubkey', pub]);
    expect(offline.stdout).toContain(`anchored by checkpoint seq ${anchor.seq}`);
    expect(offline.code).toBe(0);
    // Without the anchor line, the export's first record links to nothing.
    writeFileSync(out, lines.slice(1).join('\n') + '\n');
    const unanchored = await gatehouse(['audit', 'verify', '--file', out, '--pubkey', pub]);
    expect(unanchored.stdout).toContain('GH_ERR_AUDIT_BROKEN');
    expect(unanchored.code).toBe(1);
  });

  it('a tampered anchor (its signature, or its content), a missing anchor, an anchor moved past records removed by hand, or a missing middle segment is BROKEN', async () => {
    const dir = await prunedChain();
    const original = readFileSync(anchorPath(dir), 'utf8');
    const anchor = JSON.parse(original) as AuditRecord;
    const broken = async () => {
      const result = await gatehouse(['audit', 'verify', '--data-dir', dir]);
      expect(result.stdout).toContain('BROKEN');
      expect(result.stdout).toContain('GH_ERR_AUDIT_BROKEN');
      expect(result.code).toBe(1);
    };

    // A forged signature, re-hashed so the link to the first kept record cannot be what gives it away.
    const forged = { ...anchor, data: { ...anchor.data, signature: Buffer.alloc(64, 1).toString('base64url') } };
    const { hash: _h, ...rest } = forged;
    writeFileSync(anchorPath(dir), JSON.stringify({ ...rest, hash: hashRecord(rest) }) + '\n');
    await broken();
    // Its content changed, its hash kept: the hash no longer recomputes.
    writeFileSync(anchorPath(dir), JSON.stringify({ ...anchor, at: anchor.at + 1 }) + '\n');
    await broken();
    // Garbled, or no anchor at all.
    writeFileSync(anchorPath(dir), original.slice(0, 40));
    await broken();
    rmSync(anchorPath(dir));
    await broken();

    writeFileSync(anchorPath(dir), original);
    expect((await gatehouse(['audit', 'verify', '--data-dir', dir])).code).toBe(0);
    const kept = segments(dir);
    expect(kept.length).toBeGreaterThanOrEqual(3);
    // The oldest kept segment removed by hand, the anchor moved to the real signed checkpoint that ended it: no
    // audit.pruned record names that anchor.
    const oldest = join(dir, 'audit', 'default.segments', kept[0]);
    const oldestText = readFileSync(oldest, 'utf8');
    rmSync(oldest);
    writeFileSync(anchorPath(dir), oldestText.trim().split('\n').at(-1)! + '\n');
    await broken();
    writeFileSync(oldest, oldestText);
    writeFileSync(anchorPath(dir), original);
    rmSync(join(dir, 'audit', 'default.segments', kept[1]));
    await broken();
  });

  it('a gateway seals and prunes its chain; the chain verifies from its anchor', async () => {
    const harness = await startHarness({ audit: { segmentBytes: 4096, checkpointEvery: 1_000, retention: { maxBytes: 12 * 1024 } } });
    const client = await connectHttp(harness.url);
    for (let i = 0; i < 40; i++) await client.callTool({ name: 'fx__echo', arguments: { text: `hi ${i}` } });
    await client.close();
    await harness.close();
    const records = await auditOf(harness.dataDir, 'default');
    expect(records.some((r) => r.type === 'audit.pruned')).toBe(true);
    expect(records[0].seq).toBeGreaterThan(1);
    const verified = await gatehouse(['audit', 'verify', '--data-dir', harness.dataDir]);
    expect(verified.stdout).toContain('anchored by checkpoint');
    expect(verified.code).toBe(0);
  });

  it('a dead sink holds a gateway’s retention back; once it delivers again, retention goes on and it lost nothing', async () => {
    const siem = await sinkReceiver();
    await siem.setMode(503);
    const harness = await startHarness({ audit: { segmentBytes: 4096, retention: { maxBytes: 12 * 1024 }, sinks: [sinkConfig('siem', 'http', siem.url)] } });
    const client = await connectHttp(harness.url);
    const calls = async (n: number, from: number) => {
      for (let i = from; i < from + n; i++) await client.callTool({ name: 'fx__echo', arguments: { text: `hi ${i}` } });
    };
    try {
      await calls(40, 0);
      // Well past maxBytes, and nothing removed: the sink has delivered nothing.
      expect(readdirSync(join(harness.dataDir, 'audit', 'default.segments')).length).toBeGreaterThan(3);
      expect(existsSync(anchorPath(harness.dataDir))).toBe(false);
      expect((await auditOf(harness.dataDir, 'default'))[0].seq).toBe(1);

      await siem.setMode('accept');
      await waitFor(async () => firstOfEach(siem.delivered()).length >= (await auditOf(harness.dataDir, 'default')).length - 2, 'the sink to catch up');
      await calls(20, 40);
      await waitFor(() => existsSync(anchorPath(harness.dataDir)), 'retention to remove segments');
      const anchor = JSON.parse(readFileSync(anchorPath(harness.dataDir), 'utf8')) as AuditRecord;
      // Every removed record had been delivered, in order, from seq 1.
      const delivered = firstOfEach(siem.delivered()).map((r) => r.seq);
      expect(delivered.slice(0, anchor.seq)).toEqual(Array.from({ length: anchor.seq }, (_, i) => i + 1));
    } finally {
      await client.close();
      await harness.close();
      await siem.close();
    }
  });
});
