import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import { ChainWriter } from '../../src/audit/chain-writer.ts';
import { CHECKPOINT_TYPE } from '../../src/audit/checkpoint.ts';
import { auditKeyPath, checkpointOptions } from '../../src/runtime/audit-signing.ts';
import { defaultConfig } from '../../src/config/load.ts';
import { chainEvents } from '../../src/protocol/audit-chain.ts';
import { GENESIS, type AuditEvent, type AuditRecord } from '../../src/protocol/audit-record.ts';
import { auditOf, connectHttp, startHarness } from '../helpers/gateway-harness.ts';
import { gatehouse, pubkeyFile } from '../helpers/cli.ts';

const event = (i: number): AuditEvent => ({ tenant: 'default', at: 1_800_000_000_000 + i, type: `e${i}`, actor: 'a', data: { i } });

/** Writes `batches` of events through the chain writer a gateway uses, checkpoints every `every`, then closes it. */
async function writeChain(dir: string, batches: number[], every: number, atClose = true, signingKey?: string): Promise<void> {
  const config = defaultConfig({ dataDir: dir });
  config.audit = { ...config.audit, checkpointEvery: every, ...(signingKey ? { signingKey } : {}) };
  const writer = new ChainWriter(new FileAuditStore(dir), checkpointOptions(config, { atClose }));
  let i = 0;
  for (const size of batches) {
    await writer.write(new Map([['default', Array.from({ length: size }, () => event(++i))]]));
  }
  await writer.seal();
  await writer.close();
}

const types = (records: AuditRecord[]) => records.map((r) => (r.type === CHECKPOINT_TYPE ? 'CP' : r.type));

/** Every record whose seq is a multiple of `every` (and is no checkpoint) is followed by a checkpoint naming it. */
function expectCheckpointsEvery(records: AuditRecord[], every: number): void {
  for (const [i, record] of records.entries()) {
    if (record.type !== CHECKPOINT_TYPE && record.seq % every === 0) {
      expect(records[i + 1]?.type, `a checkpoint after seq ${record.seq}`).toBe(CHECKPOINT_TYPE);
      expect(records[i + 1].data).toMatchObject({ seq: record.seq, hash: record.hash });
    }
  }
}

/** Re-chains an export's records from the first one (as a forger who can rewrite the whole chain would), keeping its head line true. */
function rechainExport(file: string, edit: (records: AuditRecord[]) => AuditRecord[]): void {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const records = edit(lines.filter((l) => !l.includes('gatehouseExportHead')).map((l) => JSON.parse(l) as AuditRecord));
  const chained = chainEvents(
    GENESIS,
    records.map(({ seq: _s, prev: _p, hash: _h, ...e }) => e),
  );
  const last = chained.at(-1)!;
  const head = { gatehouseExportHead: { tenant: 'default', seq: last.seq, hash: last.hash } };
  writeFileSync(file, [...chained.map((r) => JSON.stringify(r)), JSON.stringify(head)].map((l) => l + '\n').join(''));
}

async function exported(dir: string): Promise<string> {
  const out = join(dir, 'export.jsonl');
  expect((await gatehouse(['audit', 'export', '--out', out, '--data-dir', dir])).code).toBe(0);
  return out;
}

describe('signed checkpoints', () => {
  it('follow every N records and end the chain at close, signed with a 0600 key kept across restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cp-'));
    await writeChain(dir, [2, 5, 1, 4], 5);
    const records = await auditOf(dir, 'default');
    // 1-5, checkpoint 6, 7-10, checkpoint 11, 12-14, and the checkpoint written at close.
    expect(types(records)).toEqual(['e1', 'e2', 'e3', 'e4', 'e5', 'CP', 'e6', 'e7', 'e8', 'e9', 'CP', 'e10', 'e11', 'e12', 'CP']);
    expectCheckpointsEvery(records, 5);
    expect(records.at(-1)!.data).toMatchObject({ seq: 14, hash: records[13].hash });
    expect(statSync(auditKeyPath(dir)).mode & 0o777).toBe(0o600);
    const key = readFileSync(auditKeyPath(dir), 'utf8');

    // A restart: the same key signs on, and the rule (after every seq that is a multiple of 5) holds across it.
    await writeChain(dir, [3, 3], 5);
    const after = await auditOf(dir, 'default');
    expectCheckpointsEvery(after, 5);
    expect(readFileSync(auditKeyPath(dir), 'utf8')).toBe(key);
    const keyIds = new Set(after.filter((r) => r.type === CHECKPOINT_TYPE).map((r) => r.data.keyId));
    expect(keyIds.size).toBe(1);

    const pub = await gatehouse(['audit', 'pubkey', '--data-dir', dir]);
    expect(pub.stdout).toContain(`keyId ${[...keyIds][0] as string}`);
    expect(pub.stdout).toContain('-----BEGIN PUBLIC KEY-----');
    const verified = await gatehouse(['audit', 'verify', '--data-dir', dir]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/\d+ signed checkpoints verify/);
  });

  it('the audit commands given --config sign and check with its audit.signingKey (read from the environment), not the data dir’s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cp-'));
    const signingKey = '7e'.repeat(32);
    await writeChain(dir, [6], 3, true, signingKey);
    const config = join(dir, 'gatehouse.yaml');
    writeFileSync(config, 'dataDir: .\naudit: { signingKey: "${env:GH_TEST_AUDIT_KEY}" }\n');
    const env = { GH_TEST_AUDIT_KEY: signingKey };
    const keyId = (await auditOf(dir, 'default')).find((r) => r.type === CHECKPOINT_TYPE)!.data.keyId as string;
    const pub = await gatehouse(['audit', 'pubkey', '--config', config], { env });
    expect(pub.stdout).toContain(`keyId ${keyId}`);
    const verified = await gatehouse(['audit', 'verify', '--config', config], { env });
    expect(verified.stdout).toContain(`3 signed checkpoints verify (key ${keyId})`);
    expect(verified.code).toBe(0);
    // No key file was made in the data dir: the config's key is the one.
    expect(() => statSync(auditKeyPath(dir))).toThrow();
    // The key's variable unset: a clear config error naming it, not a check against some other key.
    const unset = await gatehouse(['audit', 'verify', '--config', config]);
    expect(unset.code).not.toBe(0);
    expect(unset.stderr).toContain('GH_TEST_AUDIT_KEY');
  });

  it('a gateway writes them every N records and at a clean shutdown', async () => {
    const harness = await startHarness({ audit: { checkpointEvery: 2 } });
    const dataDir = harness.dataDir;
    const client = await connectHttp(harness.url);
    for (let i = 0; i < 3; i++) await client.callTool({ name: 'fx__echo', arguments: { text: `hi ${i}` } });
    await client.close();
    await harness.close();
    const records = await auditOf(dataDir, 'default');
    expect(records.some((r) => r.type === 'gateway.stopped')).toBe(true);
    expectCheckpointsEvery(records, 2);
    const last = records.at(-1)!;
    expect(last.type).toBe(CHECKPOINT_TYPE);
    expect(records.at(-2)!.type === 'gateway.stopped' || records.at(-2)!.type === CHECKPOINT_TYPE).toBe(true);
    const verified = await gatehouse(['audit', 'verify', '--data-dir', dataDir]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toContain(`signs seq ${last.seq - 1}`);
  });

  it('an export verifies offline with the public key, and fails with another key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cp-'));
    await writeChain(dir, [8], 3, false);
    const out = await exported(dir);
    const pub = await pubkeyFile(dir);
    const ok = await gatehouse(['audit', 'verify', '--file', out, '--pubkey', pub]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('3 signed checkpoints verify');
    expect(ok.stdout).toContain('1 records after it are not yet covered by a checkpoint');

    const other = mkdtempSync(join(tmpdir(), 'gh-cp-other-'));
    const wrong = await gatehouse(['audit', 'verify', '--file', out, '--pubkey', await pubkeyFile(other)]);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toContain('[GH_ERR_AUDIT_BROKEN]');

    // Without a key the checkpoints cannot be checked: not a pass.
    const keyless = await gatehouse(['audit', 'verify', '--file', out]);
    expect(keyless.code).toBe(1);
    expect(keyless.stdout).toContain('NOT CHECKED');
  });

  it('a rewritten chain with a tampered checkpoint signature or covered hash is detected', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cp-'));
    await writeChain(dir, [7], 3);
    const pub = await pubkeyFile(dir);

    const forgedSignature = await exported(dir);
    rechainExport(forgedSignature, (records) =>
      records.map((r) => (r.seq === 4 ? { ...r, data: { ...r.data, signature: Buffer.alloc(64, 1).toString('base64url') } } : r)),
    );
    const bad = await gatehouse(['audit', 'verify', '--file', forgedSignature, '--pubkey', pub]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('BROKEN at seq 4 [GH_ERR_AUDIT_BROKEN]');

    // An earlier record altered: its hash changes, and a checkpoint naming the new hash is not what was signed.
    const altered = await exported(dir);
    rechainExport(altered, (records) => {
      const edited = records.map((r) => (r.seq === 3 ? { ...r, data: { i: 99 } } : r));
      const chained = chainEvents(GENESIS, edited.slice(0, 3).map(({ seq: _s, prev: _p, hash: _h, ...e }) => e));
      return edited.map((r) => (r.seq === 4 ? { ...r, data: { ...r.data, hash: chained[2].hash } } : r));
    });
    const moved = await gatehouse(['audit', 'verify', '--file', altered, '--pubkey', pub]);
    expect(moved.code).toBe(1);
    expect(moved.stdout).toContain('BROKEN at seq 4 [GH_ERR_AUDIT_BROKEN]');

    // The same in the data dir: a chain rewritten whole (its head file moved aside) fails on the checkpoint.
    const chainFile = join(dir, 'audit', 'default.jsonl');
    writeFileSync(chainFile, readFileSync(forgedSignature, 'utf8').split('\n').filter((l) => l && !l.includes('gatehouseExportHead')).map((l) => l + '\n').join(''));
    rmSync(join(dir, 'audit', 'default.head'), { force: true });
    const store = await gatehouse(['audit', 'verify', '--data-dir', dir]);
    expect(store.code).toBe(1);
    expect(store.stdout).toContain('BROKEN at seq 4 [GH_ERR_AUDIT_BROKEN]');
  });

  it('a truncated export is detected; a cut after the last checkpoint shows where the proof ends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cp-'));
    await writeChain(dir, [8], 3, false);
    const pub = await pubkeyFile(dir);
    const out = await exported(dir);
    const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean);

    // Records cut from its end, head line kept: shorter than its head.
    writeFileSync(out, [...lines.slice(0, 5), lines.at(-1)!].map((l) => l + '\n').join(''));
    const cut = await gatehouse(['audit', 'verify', '--file', out, '--pubkey', pub]);
    expect(cut.code).toBe(1);
    expect(cut.stdout).toContain('[GH_ERR_AUDIT_TRUNCATED]');

    // A head line moved before a checkpoint the export holds: the checkpoint proves the chain went further.
    const third = JSON.parse(lines[2]) as AuditRecord;
    writeFileSync(out, [...lines.slice(0, -1), JSON.stringify({ gatehouseExportHead: { tenant: 'default', seq: third.seq, hash: third.hash } })].map((l) => l + '\n').join(''));
    const early = await gatehouse(['audit', 'verify', '--file', out, '--pubkey', pub]);
    expect(early.code).toBe(1);
    expect(early.stdout).toContain('[GH_ERR_AUDIT_TRUNCATED]');

    // Cut right after the newest checkpoint, with a forged head line: what is signed still verifies, and the report
    // says where the proof ends (seqs 1-3, checkpoint 4, 5-6, checkpoint 7, 8-9, checkpoint 10, 11: cut after 10).
    const newest = JSON.parse(lines[9]) as AuditRecord;
    expect(newest.type).toBe(CHECKPOINT_TYPE);
    writeFileSync(out, [...lines.slice(0, 10), JSON.stringify({ gatehouseExportHead: { tenant: 'default', seq: 10, hash: newest.hash } })].map((l) => l + '\n').join(''));
    const signed = await gatehouse(['audit', 'verify', '--file', out, '--pubkey', pub]);
    expect(signed.code).toBe(0);
    expect(signed.stdout).toContain('the newest signs seq 9');
  });
});
