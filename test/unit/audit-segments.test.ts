import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileAuditStore, type FileAuditStoreOptions } from '../../adapters/file/audit-store.ts';
import { FileSinkCursors } from '../../adapters/file/sink-cursors.ts';
import { ChainWriter } from '../../src/audit/chain-writer.ts';
import { CHECKPOINT_TYPE } from '../../src/audit/checkpoint.ts';
import { verifyStore } from '../../src/audit/verify.ts';
import { AuditQuery } from '../../src/audit/query.ts';
import { scanForInDoubt } from '../../src/audit/run-markers.ts';
import { auditSigningKey, checkpointOptions } from '../../src/runtime/audit-signing.ts';
import { defaultConfig, resolveConfig } from '../../src/config/load.ts';
import { parseYamlText } from '../../src/config/yaml-file.ts';
import type { AuditEvent, AuditRecord } from '../../src/protocol/audit-record.ts';
import { readChain, writeCalls as writeCallsOf } from '../helpers/audit-calls.ts';
import { expectSameCalls, indexOnly } from '../helpers/audit-index-checks.ts';
import { isGatewayError } from '../../src/errors.ts';
import type { Problem } from '../../src/config/problems.ts';

// A chain rolled into segments by a small segmentBytes reads, verifies and answers queries as one file did, and
// retention removes old segments behind a signed anchor while the rest still verifies.

const SESSIONS = Array.from({ length: 13 }, (_, i) => `s${i}`);
const START = Date.UTC(2026, 0, 1);
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A gateway's writer: checkpoints every 1,000 records and when the store says its segment is full. */
function open(dir: string, options: FileAuditStoreOptions): { store: FileAuditStore; writer: ChainWriter } {
  const store = new FileAuditStore(dir, { fsync: 'off', ...options });
  const writer = new ChainWriter(store, checkpointOptions(defaultConfig({ dataDir: dir }), { atClose: true, now: () => START }));
  closers.push(() => writer.close());
  return { store, writer };
}

const writeCalls = (writer: ChainWriter, from: number, to: number) => writeCallsOf(writer, from, to, START);
const readAll = readChain;

async function readBackAll(store: FileAuditStore): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of store.readBack('default')) out.push(r);
  return out;
}

const segmentsOf = (dir: string) => readdirSync(join(dir, 'audit', 'default.segments')).sort();
const publicKey = async (dir: string) => (await auditSigningKey(defaultConfig({ dataDir: dir }), false))!.publicKey;

describe('audit segments', () => {
  it('seal at a signed checkpoint; reads, the index and run markers answer across them as one file did', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-seg-'));
    const { store, writer } = open(dir, { segmentBytes: 8 * 1024 });
    // A run that starts, sends one job, and is cut off while many more calls fill segments.
    const marker: AuditEvent = { tenant: 'default', at: START, type: 'gateway.started', actor: 'gateway', data: {} };
    const lost: AuditEvent = { tenant: 'default', at: START, type: 'job.dispatched', actor: 'scheduler', jobId: 'lost', data: {} };
    await writer.write(new Map([['default', [marker, lost]]]));
    const first = await writeCalls(writer, 0, 60);
    const query = indexOnly(store);
    const before = await Promise.all(first.map((c) => query.job('default', c.jobId)));
    const sessionBefore = await query.calls('default', { session: 's1' }, { limit: 1_000 });
    const sealedBefore = existsSync(join(dir, 'audit', 'default.segments')) ? segmentsOf(dir).length : 0;

    const calls = [...first, ...(await writeCalls(writer, 60, 300))];
    const segments = segmentsOf(dir);
    expect(segments.length).toBeGreaterThan(sealedBefore + 3);
    // Every sealed segment ends in a checkpoint that signs the record before it.
    for (const name of segments) {
      const lines = readFileSync(join(dir, 'audit', 'default.segments', name), 'utf8').trim().split('\n');
      const [last, before] = [JSON.parse(lines.at(-1)!) as AuditRecord, JSON.parse(lines.at(-2)!) as AuditRecord];
      expect(last.type).toBe(CHECKPOINT_TYPE);
      expect(last.data).toMatchObject({ seq: before.seq, hash: before.hash });
      expect(Number(name.slice(0, 12))).toBe((JSON.parse(lines[0]) as AuditRecord).seq);
    }

    const records = await readAll(store);
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
    expect((await readBackAll(store)).map((r) => r.seq)).toEqual(records.map((r) => r.seq).reverse());
    for (const from of [2, 50, 333, records.length - 3, records.length + 1]) expect(await readAll(store, from)).toEqual(records.filter((r) => r.seq >= from));
    expect(await verifyStore(store, 'default', await publicKey(dir))).toMatchObject({ ok: true, records: records.length });

    // Entries written before a seal still point at their records: the same answers, through the index alone.
    expect(await Promise.all(first.map((c) => query.job('default', c.jobId)))).toEqual(before);
    expect((await query.calls('default', { session: 's1' }, { limit: 1_000 })).calls.slice(-sessionBefore.calls.length)).toEqual(sessionBefore.calls);
    const scan = new AuditQuery({ readBack: (t) => store.readBack(t) });
    await expectSameCalls(query, scan, SESSIONS, calls.filter((_, i) => i % 10 === 0).map((c) => c.jobId));
    // And an index rebuilt from the segments (another process, or the file lost) answers the same.
    const fresh = new FileAuditStore(dir, { fsync: 'off' });
    closers.push(() => fresh.close());
    await expectSameCalls(indexOnly(fresh), scan, SESSIONS, calls.filter((_, i) => i % 10 === 0).map((c) => c.jobId));

    // A start reads back through the segments to the run's marker and finds the job cut off.
    const scan2 = await scanForInDoubt(store, 'default');
    expect(scan2.marker).toMatchObject({ seq: 1, type: 'gateway.started' });
    expect(scan2.jobs.map((j) => j.jobId)).toContain('lost');
  });

  it('a read that a seal overtakes still yields every record, in order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-seg-'));
    const { store, writer } = open(dir, { segmentBytes: 4 * 1024 });
    let n = 0;
    /** Writes `calls` calls, then single calls until the active file holds records (a batch may just have sealed it). */
    const write = async (calls: number) => {
      await writeCalls(writer, n, (n += calls));
      while (readFileSync(store.filePath('default')).length === 0) await writeCalls(writer, n, ++n);
    };
    await write(40);
    const reading = store.read('default')[Symbol.asyncIterator]();
    const seqs = [(await reading.next()).value!.seq];
    // The files were listed; now the active file is sealed (more than once) before the read reaches it, and the
    // path it opens names a new active file with other records.
    const sealed = segmentsOf(dir).length;
    await write(80);
    expect(segmentsOf(dir).length).toBeGreaterThan(sealed + 1);
    for (let r = await reading.next(); !r.done; r = await reading.next()) seqs.push(r.value.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(seqs.length).toBeGreaterThan(200);
  });

  it('a store that does not seal (the CLI) and one that does append to one chain in turn', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-seg-'));
    const gateway = open(dir, { segmentBytes: 4 * 1024 });
    const cli = open(dir, {});
    for (let round = 0; round < 6; round++) {
      await writeCalls(gateway.writer, round * 40, round * 40 + 20);
      await writeCalls(cli.writer, round * 40 + 20, round * 40 + 40);
    }
    expect(segmentsOf(dir).length).toBeGreaterThan(3);
    const records = await readAll(gateway.store);
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
    expect(await verifyStore(cli.store, 'default', await publicKey(dir))).toMatchObject({ ok: true });
  });
});

describe('audit retention', () => {
  it('removes the oldest segments past maxBytes behind a signed anchor, records audit.pruned, and the rest verifies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-ret-'));
    const { store, writer } = open(dir, { segmentBytes: 4 * 1024, retention: { maxBytes: 16 * 1024 } });
    await writeCalls(writer, 0, 200);
    const anchor = JSON.parse(readFileSync(join(dir, 'audit', 'default.anchor'), 'utf8')) as AuditRecord;
    expect(anchor.type).toBe(CHECKPOINT_TYPE);
    const records = await readAll(store);
    expect(records[0].seq).toBe(anchor.seq + 1);
    expect(records[0].prev).toBe(anchor.hash);
    const pruned = records.filter((r) => r.type === 'audit.pruned');
    expect(pruned.length).toBeGreaterThan(0);
    expect(pruned.at(-1)!.data).toMatchObject({ throughSeq: anchor.seq, anchor: { seq: anchor.seq, hash: anchor.hash }, reason: 'maxBytes' });
    const sizes = segmentsOf(dir).map((n) => readFileSync(join(dir, 'audit', 'default.segments', n)).length);
    // What is kept: at most maxBytes, or one segment more when the newest sealed one alone passes it.
    expect(sizes.slice(1).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(16 * 1024);
    const report = await verifyStore(store, 'default', await publicKey(dir));
    expect(report, JSON.stringify(report)).toMatchObject({ ok: true, anchor: { seq: anchor.seq, hash: anchor.hash } });
    // Without the anchor, the first kept record links to nothing: broken.
    rmSync(join(dir, 'audit', 'default.anchor'));
    expect(await verifyStore(store, 'default', await publicKey(dir))).toMatchObject({ ok: false, code: 'GH_ERR_AUDIT_BROKEN', brokenAt: { seq: 1 } });
  });

  it('removes segments past maxAge by their newest record, never the newest sealed one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-ret-'));
    let now = START;
    const { store, writer } = open(dir, { segmentBytes: 4 * 1024, now: () => now, retention: { maxAgeMs: 3_600_000 } });
    await writeCalls(writer, 0, 100);
    const sealed = segmentsOf(dir);
    expect(sealed.length).toBeGreaterThan(2);
    expect(existsSync(join(dir, 'audit', 'default.anchor'))).toBe(false);
    now = START + 2 * 3_600_000; // every record written so far is two hours old
    await writeCalls(writer, 100, 140);
    const kept = segmentsOf(dir);
    expect(kept).not.toContain(sealed[0]);
    // The newest sealed segment stays, however old: the active file's offsets start where it ends.
    expect(kept.length).toBeGreaterThan(0);
    const records = await readAll(store);
    expect(records.find((r) => r.type === 'audit.pruned')!.data).toMatchObject({ reason: 'maxAge' });
    expect(await verifyStore(store, 'default', await publicKey(dir))).toMatchObject({ ok: true });
  });

  it('runs at start: a store removes old segments at its first append to a chain, before any seal of its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-ret-'));
    const before = open(dir, { segmentBytes: 4 * 1024 });
    await writeCalls(before.writer, 0, 100);
    await before.store.close();
    const sealed = segmentsOf(dir);
    // Segments too large to fill with one call: only the start can remove anything.
    const after = open(dir, { segmentBytes: 1024 * 1024, now: () => START + 2 * 3_600_000, retention: { maxAgeMs: 3_600_000 } });
    await writeCalls(after.writer, 100, 101);
    expect(segmentsOf(dir)).toEqual(sealed.slice(-1));
    expect(existsSync(join(dir, 'audit', 'default.anchor'))).toBe(true);
    expect(await verifyStore(after.store, 'default', await publicKey(dir))).toMatchObject({ ok: true });
  });

  it('a restarted store continues the chain right after a seal, and with a recorded head older than the anchor', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-ret-'));
    let n = 0;
    const until = async (writer: ChainWriter, done: () => boolean) => {
      while (!done()) {
        expect(n).toBeLessThan(500);
        await writeCalls(writer, n, ++n);
      }
    };
    const activeEmpty = () => existsSync(join(dir, 'audit', 'default.segments')) && readFileSync(join(dir, 'audit', 'default.jsonl')).length === 0;
    const anchored = () => existsSync(join(dir, 'audit', 'default.anchor'));
    const first = open(dir, { segmentBytes: 4 * 1024 });
    await until(first.writer, activeEmpty);
    await first.store.close();
    // A new store finds the newest record in the sealed segment, the active file being empty.
    const second = open(dir, { segmentBytes: 4 * 1024, retention: { maxBytes: 8 * 1024 } });
    await until(second.writer, anchored);
    await second.store.close();
    const anchor = JSON.parse(readFileSync(join(dir, 'audit', 'default.anchor'), 'utf8')) as AuditRecord;
    // The head file as a crash may leave it: written before the records retention has since removed.
    writeFileSync(second.store.headPath('default'), JSON.stringify({ seq: anchor.seq - 5, hash: 'sha256:' + '0'.repeat(64) }) + '\n');
    const third = open(dir, { segmentBytes: 4 * 1024, retention: { maxBytes: 8 * 1024 } });
    await writeCalls(third.writer, n, n + 20);
    const records = await readAll(third.store);
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => records[0].seq + i));
    expect(await verifyStore(third.store, 'default', await publicKey(dir))).toMatchObject({ ok: true });
  });

  it('holds back at what a sink has not delivered, then catches up with nothing lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-ret-'));
    const cursors = new FileSinkCursors(dir);
    const { store, writer } = open(dir, { segmentBytes: 4 * 1024, retention: { maxBytes: 8 * 1024, delivered: (t) => cursors.get('siem', t) } });
    await writeCalls(writer, 0, 120);
    // The sink delivered nothing: every record is still there, from seq 1.
    expect(existsSync(join(dir, 'audit', 'default.anchor'))).toBe(false);
    expect((await readAll(store))[0].seq).toBe(1);
    const delivered = 150;
    await cursors.set('siem', 'default', delivered);
    await writeCalls(writer, 120, 160);
    const anchor = JSON.parse(readFileSync(join(dir, 'audit', 'default.anchor'), 'utf8')) as AuditRecord;
    expect(anchor.seq).toBeLessThanOrEqual(delivered);
    // What the sink reads next is all there.
    const next = await readAll(store, delivered + 1);
    expect(next[0].seq).toBe(delivered + 1);
    expect(next.map((r) => r.seq)).toEqual(next.map((_, i) => delivered + 1 + i));
    expect(await verifyStore(store, 'default', await publicKey(dir))).toMatchObject({ ok: true });
  });
});

describe('audit segment config', () => {
  const FILE = '/etc/gh/gatehouse.yaml';
  const load = (text: string) => resolveConfig(parseYamlText(FILE, text, 'GH_ERR_CONFIG_INVALID'), {}, () => true);
  /** The key paths of the config error `text` gets (the code is the contract, never the prose). */
  const paths = (text: string) => {
    try {
      load(text);
    } catch (err) {
      expect(isGatewayError(err, 'GH_ERR_CONFIG_INVALID')).toBe(true);
      return (err as { data: { problems: Problem[] } }).data.problems.map((p) => p.path);
    }
    throw new Error('expected a config error');
  };

  it('takes sizes and durations, and refuses bad values and what distributed mode cannot do', () => {
    expect(load('audit: { segmentBytes: 64MiB, retention: { maxAge: 90d, maxBytes: 10GiB } }\n').audit).toMatchObject({
      segmentBytes: 64 * 1024 * 1024,
      retention: { maxAge: 90 * 86_400_000, maxBytes: 10 * 1024 ** 3 },
    });
    expect(load('audit: { segmentBytes: 4096 }\n').audit.segmentBytes).toBe(4096);
    expect(paths('audit: { segmentBytes: 12 parsecs }\n')).toEqual([['audit', 'segmentBytes']]);
    expect(paths('audit: { segmentBytes: 10 }\n')).toEqual([['audit', 'segmentBytes']]);
    expect(paths('audit: { retention: {} }\n')).toEqual([['audit', 'retention']]);
    expect(paths('audit: { retention: { maxAge: soon } }\n')).toEqual([['audit', 'retention', 'maxAge']]);
    expect(paths('audit: { retention: { maxAge: 0s } }\n')).toEqual([['audit', 'retention', 'maxAge']]);
    expect(paths('audit: { retention: { keep: 3 } }\n')).toContainEqual(['audit', 'retention', 'keep']);
    const distributed = 'mode: distributed\nnats: { url: "nats://h:4222" }\nredis: { url: "redis://h:6379" }\napprovals: { signingKey: "' + 'k'.repeat(40) + '" }\n';
    expect(paths(distributed + 'audit: { retention: { maxAge: 30d }, segmentBytes: 1MiB }\n')).toEqual([['audit', 'segmentBytes']]);
    // Distributed mode trims the Redis lists, every `interval`; embedded mode trims at seals and has no interval.
    expect(load(distributed + 'audit: { retention: { maxAge: 30d, interval: 5m } }\n').audit.retention).toEqual({ maxAge: 30 * 86_400_000, interval: 300_000 });
    expect(paths('audit: { retention: { maxAge: 30d, interval: 5m } }\n')).toEqual([['audit', 'retention', 'interval']]);
    expect(paths(distributed + 'audit: { retention: { maxAge: 30d, interval: 10ms } }\n')).toEqual([['audit', 'retention', 'interval']]);
  });
});
