import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import { chainEvents } from '../../src/protocol/audit-chain.ts';
import { GENESIS, type AuditEvent, type AuditRecord } from '../../src/protocol/audit-record.ts';
import { gatehouse } from '../helpers/cli.ts';

const event = (type: string): AuditEvent => ({ tenant: 'default', at: 1, type, actor: 'a', data: {} });

/** A data dir whose default chain holds `n` records, written (and its head recorded) by the real store. */
async function dataDirWith(n: number): Promise<{ dir: string; file: string; records: AuditRecord[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-verify-'));
  const store = new FileAuditStore(dir);
  const records = chainEvents(GENESIS, Array.from({ length: n }, (_, i) => event(`e${i + 1}`)));
  await store.append('default', GENESIS, records);
  await store.close();
  return { dir, file: join(dir, 'audit', 'default.jsonl'), records };
}

const dropLastLines = (file: string, n: number) => {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  writeFileSync(file, lines.slice(0, lines.length - n).map((l) => l + '\n').join(''));
};

describe('audit verify and a cut chain', () => {
  it('reports a chain shorter than its recorded head and exits 1, naming both heads', async () => {
    const { dir, file, records } = await dataDirWith(3);
    expect(await gatehouse(['audit', 'verify', '--data-dir', dir])).toMatchObject({ code: 0 });
    dropLastLines(file, 2);
    const result = await gatehouse(['audit', 'verify', '--data-dir', dir]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('[GH_ERR_AUDIT_TRUNCATED]');
    expect(result.stdout).toContain(records[0].hash);
    expect(result.stdout).toContain(records[2].hash);
  });

  it('reports a torn tail as a torn write, not as tampering, and exits 0', async () => {
    const { dir, file } = await dataDirWith(2);
    appendFileSync(file, '{"seq":3,"tenant":"def');
    const result = await gatehouse(['audit', 'verify', '--data-dir', dir]);
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain('[GH_ERR_AUDIT_BROKEN]');
    expect(result.stdout).toContain('torn');
  });
});

describe('audit export carries its head', () => {
  it('ends each chain with a head line that verify --file prints and checks', async () => {
    const { dir, records } = await dataDirWith(3);
    const out = join(dir, 'export.jsonl');
    expect((await gatehouse(['audit', 'export', '--out', out, '--data-dir', dir])).code).toBe(0);
    const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean);
    expect(JSON.parse(lines.at(-1)!)).toEqual({ gatehouseExportHead: { tenant: 'default', seq: 3, hash: records[2].hash, recordedHead: { seq: 3, hash: records[2].hash } } });
    const whole = await gatehouse(['audit', 'verify', '--file', out]);
    expect(whole.code).toBe(0);
    expect(whole.stdout).toContain(records[2].hash);

    // The newest record gone, the head line kept: shorter than its head.
    writeFileSync(out, [...lines.slice(0, 2), lines[3]].map((l) => l + '\n').join(''));
    const cut = await gatehouse(['audit', 'verify', '--file', out]);
    expect(cut.code).toBe(1);
    expect(cut.stdout).toContain('[GH_ERR_AUDIT_TRUNCATED]');

    // Cut at its end, head line and all: an export without its head line is not whole either.
    writeFileSync(out, lines.slice(0, 2).map((l) => l + '\n').join(''));
    const headless = await gatehouse(['audit', 'verify', '--file', out]);
    expect(headless.code).toBe(1);
    expect(headless.stdout).toContain('[GH_ERR_AUDIT_TRUNCATED]');
  });
});
