import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import { lastMark } from '../../adapters/file/audit-index-chunk.ts';
import { AuditQuery } from '../../src/audit/query.ts';
import type { AuditStore } from '../../src/ports.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import { chainEvents } from '../../src/protocol/audit-chain.ts';
import { callEvents, generatedCall, writeGeneratedLog, type GeneratedCall } from '../helpers/audit-calls.ts';
import { expectSameCalls, indexOnly } from '../helpers/audit-index-checks.ts';
import { coded } from '../helpers/coded-errors.ts';

// The index is a cache of the chain: whatever state it is in, a query through it answers exactly what the scan of
// the chain answers. Each test compares the two over a generated log (13 sessions, interleaved jobs, pending and
// finished calls, small and odd batches), following cursors.

const SESSIONS = Array.from({ length: 13 }, (_, i) => `s${i}`);
let source: string;
let calls: GeneratedCall[];
const stores: FileAuditStore[] = [];

beforeAll(async () => {
  source = mkdtempSync(join(tmpdir(), 'gh-audit-index-'));
  calls = await writeGeneratedLog(source, 500, { batch: 37 });
});

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

/** A copy of the generated chain (and its index) to damage. */
function copy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-audit-index-'));
  cpSync(source, dir, { recursive: true });
  return dir;
}

function open(dir: string, options: ConstructorParameters<typeof FileAuditStore>[1] = {}): FileAuditStore {
  const store = new FileAuditStore(dir, options);
  stores.push(store);
  return store;
}

const scanOf = (store: AuditStore) => new AuditQuery({ readBack: (t) => store.readBack(t) });

/** Every session's pages and every tenth job, through `query`, equal to the scan's. */
function expectSameAsScan(query: AuditQuery, store: FileAuditStore, jobs: GeneratedCall[] = calls): Promise<void> {
  return expectSameCalls(query, scanOf(store), SESSIONS, jobs.filter((_, i) => i % 10 === 0).map((c) => c.jobId));
}

async function readAll(store: AuditStore, fromSeq?: number): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of store.read('default', fromSeq === undefined ? {} : { fromSeq })) out.push(r);
  return out;
}

describe('the file audit index', () => {
  it('answers session pages and jobs exactly as the scan does, without scanning', async () => {
    const store = open(copy());
    await expectSameAsScan(indexOnly(store), store);
  });

  it('is kept by the appends: its last mark covers the whole chain, with an entry per record', async () => {
    const store = open(copy());
    const index = readFileSync(store.indexPath('default'));
    const head = await store.head('default');
    expect(lastMark(index)?.cover).toMatchObject({ end: statSync(store.filePath('default')).size, seq: head.seq, hash: head.hash });
    expect(index.toString().split('\n').filter((line) => /^\d/.test(line))).toHaveLength(head.seq);
  });

  it('is rebuilt when missing, corrupt, or made for another chain', async () => {
    const missing = copy();
    rmSync(join(missing, 'audit', 'default.idx'));
    const corrupt = copy();
    writeFileSync(join(corrupt, 'audit', 'default.idx'), 'garbage\n\t\t\n#\t1\t2\n');
    const other = copy();
    // Another chain of the same tenant, under the first one's index.
    const elsewhere = mkdtempSync(join(tmpdir(), 'gh-audit-index-'));
    await writeGeneratedLog(elsewhere, 500, { batch: 11, start: Date.UTC(2026, 5, 1) });
    cpSync(join(elsewhere, 'audit', 'default.jsonl'), join(other, 'audit', 'default.jsonl'));
    for (const dir of [missing, corrupt]) {
      const store = open(dir);
      await expectSameAsScan(indexOnly(store), store);
      expect(lastMark(readFileSync(store.indexPath('default')))?.cover.end).toBe(statSync(store.filePath('default')).size);
    }
    const store = open(other);
    const scan = scanOf(store);
    for (const session of SESSIONS) expect(await indexOnly(store).calls('default', { session }, { limit: 1_000 })).toEqual(await scan.calls('default', { session }, { limit: 1_000 }));
  });

  it('catches up with records appended while it was not kept, and ignores a torn write of its own', async () => {
    const dir = copy();
    // A torn index line after its last mark: a crash while it was written.
    appendFileSync(join(dir, 'audit', 'default.idx'), '9999\t12');
    const plain = open(dir, { index: false });
    let head = await plain.head('default');
    const later = Array.from({ length: 40 }, (_, i) => ({ ...generatedCall(600 + i, Date.UTC(2026, 0, 2)), session: SESSIONS[i % 13] }));
    const records = chainEvents(head, later.flatMap((c) => callEvents(c)));
    await plain.append('default', head, records);
    head = { seq: records.at(-1)!.seq, hash: records.at(-1)!.hash };
    const store = open(dir);
    await expectSameAsScan(indexOnly(store), store, [...calls, ...later]);
    // Appends extend the index again once it caught up.
    const more = chainEvents(head, callEvents({ ...generatedCall(700, Date.UTC(2026, 0, 3)), session: 's1' }));
    await store.append('default', head, more);
    expect(lastMark(readFileSync(store.indexPath('default')))?.cover.seq).toBe(more.at(-1)!.seq);
  });

  it('follows a torn chain tail repaired by the next append', async () => {
    const dir = copy();
    appendFileSync(join(dir, 'audit', 'default.jsonl'), '{"seq":999999,"half a rec');
    const store = open(dir);
    const head = await store.head('default');
    const extra = { ...generatedCall(800, Date.UTC(2026, 0, 4)), session: 's3' };
    const records = chainEvents(head, callEvents(extra));
    const appended = await store.append('default', head, records);
    expect(appended.ok).toBe(false);
    if (appended.ok) return;
    const repaired = appended.head;
    await store.append('default', repaired, chainEvents(repaired, callEvents(extra)));
    const query = indexOnly(store);
    expect(await query.calls('default', { session: 's3' }, { limit: 1_000 })).toEqual(await scanOf(store).calls('default', { session: 's3' }, { limit: 1_000 }));
    expect((await query.job('default', extra.jobId))?.records.map((r) => r.type)).toEqual(callEvents(extra).map((e) => e.type));
  });

  it('a record that is not the one its entry names drops the index: the query scans, and the next rebuilds it', async () => {
    const dir = copy();
    const path = join(dir, 'audit', 'default.idx');
    // Every entry of one job now points at another record (same width, so the file still parses).
    const victim = calls[100];
    const text = readFileSync(path, 'latin1');
    const lines = text.split('\n');
    const firstOther = lines.findIndex((l) => /^\d+\t\d+\t=/.test(l) && !l.includes(victim.jobId));
    const otherOffset = lines[firstOther].split('\t')[1];
    const forged = lines.map((l) => {
      const [seq, offset, job, session] = l.split('\t');
      return job === `=${victim.jobId}` ? [seq, otherOffset.padStart(offset.length, '0'), job, session].join('\t') : l;
    });
    writeFileSync(path, forged.join('\n'), 'latin1');
    const store = open(dir);
    const query = new AuditQuery(store);
    expect(await query.job('default', victim.jobId)).toEqual(await scanOf(store).job('default', victim.jobId));
    expect(await store.jobRecords('default', [victim.jobId])).toHaveLength(1);
    expect(readFileSync(path, 'latin1')).not.toEqual(forged.join('\n'));
  });

  it('read from a seq starts at its record: the records before it are not read', async () => {
    const dir = copy();
    const store = open(dir);
    const all = await readAll(store);
    for (const from of [2, 37, 38, 500, all.length, all.length + 5]) expect(await readAll(store, from)).toEqual(all.filter((r) => r.seq >= from));
    // A broken first record fails a read from the start, but not one from further on, which never reads it.
    const chain = store.filePath('default');
    const bytes = readFileSync(chain);
    const firstEnd = bytes.indexOf(0x0a);
    writeFileSync(chain, Buffer.concat([Buffer.alloc(firstEnd, 'x'), bytes.subarray(firstEnd)]));
    const reopened = open(dir);
    await expect(readAll(reopened)).rejects.toThrow(coded('GH_ERR_DATA_CORRUPT'));
    expect(await readAll(reopened, 1_000)).toEqual(all.filter((r) => r.seq >= 1_000));
  });

  it('an empty or absent chain answers empty, and a new chain starts a new index', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-audit-index-'));
    const store = open(dir);
    expect(await store.sessionCalls('default', 's1')).toEqual([]);
    expect(await store.jobRecords('default', ['x'])).toEqual([[]]);
    // A stale index of a chain since removed is replaced by the first append.
    writeFileSync(store.indexPath('default'), readFileSync(join(source, 'audit', 'default.idx')));
    const records = chainEvents({ seq: 0, hash: 'sha256:' + '0'.repeat(64) }, callEvents(generatedCall(1, Date.UTC(2026, 0, 1))));
    await store.append('default', { seq: 0, hash: 'sha256:' + '0'.repeat(64) }, records);
    expect(lastMark(readFileSync(store.indexPath('default')))?.cover.seq).toBe(records.length);
    truncateSync(store.indexPath('default'), 0);
    expect((await store.jobRecords('default', [records[0].jobId!]))![0]).toHaveLength(records.length);
  });
});
