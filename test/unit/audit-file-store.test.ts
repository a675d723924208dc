import { appendFileSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FileAuditStore, SYNC_APPEND_MAX_BYTES, type ChainFileIo } from '../../adapters/file/audit-store.ts';
import { ChainWriter } from '../../src/audit/chain-writer.ts';
import { chainEvents } from '../../src/protocol/audit-chain.ts';
import { GENESIS, type AuditEvent, type AuditRecord } from '../../src/protocol/audit-record.ts';
import { verifyChain } from '../../src/audit/verify.ts';

const event = (type: string): AuditEvent => ({ tenant: 't', at: 1, type, actor: 'a', data: { n: type } });

async function collect(store: FileAuditStore, tenant = 't'): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of store.read(tenant)) out.push(r);
  return out;
}

function freshDir(): string {
  return mkdtempSync(join(tmpdir(), 'gh-audit-file-'));
}

const chainFile = (dir: string) => join(dir, 'audit', 't.jsonl');
const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

describe('FileAuditStore: a torn tail', () => {
  it('is repaired on the next append: cut to the last whole record, recorded in the chain, and the chain verifies', async () => {
    const dir = freshDir();
    const store = new FileAuditStore(dir);
    const first = chainEvents(GENESIS, [event('a'), event('b')]);
    await store.append('t', GENESIS, first);
    await store.close();
    // A crash half-way through a line.
    const torn = '{"actor":"a","at":1,"data":{"n":"c"},"prev":"sha256:';
    appendFileSync(chainFile(dir), torn);

    const again = new FileAuditStore(dir);
    expect(await again.tornTail('t')).toEqual({ bytes: torn.length, digest: 'sha256:' + createHash('sha256').update(torn).digest('hex') });
    // Verify reads the whole records and reports the torn bytes apart: it is not an edit.
    expect(await verifyChain('t', again.read('t'))).toMatchObject({ ok: true, records: 2 });

    const writer = new ChainWriter(again);
    await writer.write(new Map([['t', [event('c')]]]));
    const records = await collect(again);
    expect(records.map((r) => r.type)).toEqual(['a', 'b', 'audit.repaired', 'c']);
    expect(records[2].data).toMatchObject({ droppedBytes: torn.length, droppedDigest: 'sha256:' + createHash('sha256').update(torn).digest('hex'), afterSeq: 2 });
    expect((await verifyChain('t', records)).ok).toBe(true);
    expect(await again.tornTail('t')).toBeUndefined();
    // The dropped bytes are kept aside, never deleted.
    const aside = readdirSync(join(dir, 'audit')).filter((n) => n.includes('.torn-'));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, 'audit', aside[0]), 'utf8')).toBe(torn);
    // `fsync: batch` records the head once the window's fsync covered it, at the latest when the store closes.
    await again.close();
    expect(await again.recordedHead('t')).toEqual({ seq: 4, hash: records[3].hash });
  });

  it('is only ever repaired at the end of the file: a broken line in the middle stays as it is and verify says BROKEN', async () => {
    const dir = freshDir();
    const store = new FileAuditStore(dir);
    const records = chainEvents(GENESIS, [event('a'), event('b'), event('c')]);
    await store.append('t', GENESIS, records);
    await store.close();
    const lines = readFileSync(chainFile(dir), 'utf8').split('\n');
    lines[1] = lines[1].slice(0, 20);
    writeFileSync(chainFile(dir), lines.join('\n'));
    const before = readFileSync(chainFile(dir), 'utf8');

    const again = new FileAuditStore(dir);
    expect(await again.tornTail('t')).toBeUndefined();
    const report = await verifyChain('t', again.read('t'));
    expect(report).toMatchObject({ ok: false, brokenAt: { seq: 2, line: 2 } });
    const head = { seq: 3, hash: records[2].hash };
    expect(await again.append('t', head, chainEvents(head, [event('d')]))).toEqual({ ok: true });
    expect(readFileSync(chainFile(dir), 'utf8').startsWith(before)).toBe(true);
    await again.close();
  });

  // Small batches are written synchronously on the held file, large ones through the thread pool: both can fail part-way.
  const fillers = { 'a small batch': 0, 'a batch too large to write synchronously': SYNC_APPEND_MAX_BYTES };
  for (const [label, padding] of Object.entries(fillers)) {
    it(`left by a full disk (${label}) is repaired by the retry once space is back, and appends resume`, async () => {
      const dir = freshDir();
      let full = false;
      // A full disk takes the first part of a write, then refuses the rest.
      const half = (data: Buffer) => data.subarray(0, Math.floor(data.length / 2));
      const io: Partial<ChainFileIo> = {
        appendSync: (fd, data) => {
          writeSync(fd, full ? half(data) : data);
          if (full) throw enospc();
        },
        append: async (path, data) => {
          await appendFile(path, full ? half(data) : data);
          if (full) throw enospc();
        },
      };
      const store = new FileAuditStore(dir, { io });
      const writer = new ChainWriter(store);
      const padded = (type: string): AuditEvent => ({ ...event(type), data: { n: type, pad: 'x'.repeat(padding) } });
      await writer.write(new Map([['t', [padded('a')]]]));
      full = true;
      await expect(writer.write(new Map([['t', [padded('b'), padded('c')]]]))).rejects.toMatchObject({ failed: ['t'], cause: { code: 'GH_ERR_AUDIT_UNAVAILABLE', cause: { code: 'ENOSPC' } } });
      // The trail retries the same batch a second later; by then the disk has room again.
      full = false;
      await writer.write(new Map([['t', [padded('b'), padded('c')]]]));
      await writer.write(new Map([['t', [padded('d')]]]));
      const records = await collect(store);
      expect(records.map((r) => r.type)).toEqual(['a', 'audit.repaired', 'b', 'c', 'd']);
      expect((await verifyChain('t', records)).ok).toBe(true);
      await store.close();
    });
  }
});

describe('FileAuditStore: the recorded head', () => {
  it('is kept apart from the chain, in <dataDir>/audit/<tenant>.head', async () => {
    const dir = freshDir();
    const store = new FileAuditStore(dir, { fsync: 'always' });
    const records = chainEvents(GENESIS, [event('a')]);
    await store.append('t', GENESIS, records);
    expect(JSON.parse(readFileSync(join(dir, 'audit', 't.head'), 'utf8'))).toMatchObject({ seq: 1, hash: records[0].hash });
    await store.close();
  });

  it('notices a cut followed by new records of the same length: a different last record than its head', async () => {
    const dir = freshDir();
    const store = new FileAuditStore(dir);
    const records = chainEvents(GENESIS, [event('a'), event('b')]);
    await store.append('t', GENESIS, records);
    // Someone replaces the newest record by another one of exactly the same size.
    const forged = chainEvents({ seq: 1, hash: records[0].hash }, [event('x')]);
    const lines = readFileSync(chainFile(dir), 'utf8').split('\n');
    lines[1] = JSON.stringify(forged[0]);
    writeFileSync(chainFile(dir), lines.join('\n'));
    const head = { seq: 2, hash: records[1].hash };
    await expect(store.append('t', head, chainEvents(head, [event('c')]))).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_TRUNCATED' });
    await store.close();
  });

  it('follows a chain file replaced by a rename: appends land in the file the path names, and a shorter copy is a cut', async () => {
    const dir = freshDir();
    const store = new FileAuditStore(dir);
    const writer = new ChainWriter(store);
    await writer.write(new Map([['t', [event('a'), event('b')]]]));
    // The same records in a new file (a restore, an editor's save): the held file is not the chain any more.
    const replace = (content: string) => {
      writeFileSync(`${chainFile(dir)}.new`, content);
      renameSync(`${chainFile(dir)}.new`, chainFile(dir));
    };
    replace(readFileSync(chainFile(dir), 'utf8'));
    await writer.write(new Map([['t', [event('c')]]]));
    const records = await collect(store);
    expect(records.map((r) => r.type)).toEqual(['a', 'b', 'c']);
    expect((await verifyChain('t', records)).ok).toBe(true);
    // A new file without the newest record is a cut like any other.
    replace(readFileSync(chainFile(dir), 'utf8').split('\n').slice(0, 2).map((l) => l + '\n').join(''));
    await expect(writer.write(new Map([['t', [event('d')]]]))).rejects.toMatchObject({ cause: { code: 'GH_ERR_AUDIT_TRUNCATED' } });
    await store.close();
  });

  it('accepts what another writer appended in between (the CLI in another process)', async () => {
    const dir = freshDir();
    const gateway = new FileAuditStore(dir);
    const cli = new FileAuditStore(dir);
    const first = chainEvents(GENESIS, [event('a')]);
    await gateway.append('t', GENESIS, first);
    let head = await cli.head('t');
    const second = chainEvents(head, [event('b')]);
    await cli.append('t', head, second);
    head = { seq: 2, hash: second[0].hash };
    // The head the gateway remembers is stale now: the compare-and-swap says so, with the head the CLI left.
    const stale = { seq: 1, hash: first[0].hash };
    const refused = await gateway.append('t', stale, chainEvents(stale, [event('c')]));
    expect(refused).toEqual({ ok: false, head });
    head = { seq: 2, hash: (refused as { head: typeof head }).head.hash };
    expect(await gateway.append('t', head, chainEvents(head, [event('c')]))).toEqual({ ok: true });
    expect((await verifyChain('t', gateway.read('t'))).ok).toBe(true);
    await gateway.close();
    await cli.close();
  });
});

describe('FileAuditStore: fsync', () => {
  /** Real file writes; fsyncs are recorded, and each waits until the test lets it finish. */
  function syncs() {
    const calls: { path: string; finish: () => void; fail: (err: Error) => void }[] = [];
    let notify: (() => void) | undefined;
    const io: Partial<ChainFileIo> = {
      sync: (path) =>
        new Promise<void>((finish, fail) => {
          calls.push({ path, finish, fail });
          notify?.();
        }),
    };
    const next = async (n: number) => {
      while (calls.length < n) await new Promise<void>((r) => (notify = r));
      return calls[n - 1];
    };
    return { io, calls, next };
  }
  const ofChain = (dir: string) => (c: { path: string }) => c.path === chainFile(dir);

  it('always: an append resolves only after the chain file is fsynced, and then its head is recorded', async () => {
    const dir = freshDir();
    const { io, next } = syncs();
    const store = new FileAuditStore(dir, { fsync: 'always', io });
    let resolved = false;
    const appended = store.append('t', GENESIS, chainEvents(GENESIS, [event('a')])).then((r) => ((resolved = true), r));
    const sync = await next(1);
    expect(sync.path).toBe(chainFile(dir));
    expect(resolved).toBe(false);
    sync.finish();
    // A new file's directory entry is made durable once, too.
    (await next(2)).finish();
    expect(await appended).toEqual({ ok: true });
    expect(await store.recordedHead('t')).toMatchObject({ seq: 1 });
    await store.close();
  });

  it('always: a write the disk would not fsync is dropped and recorded before the retry, so nothing lands twice', async () => {
    const dir = freshDir();
    const { io, next } = syncs();
    const store = new FileAuditStore(dir, { fsync: 'always', io });
    const writer = new ChainWriter(store);
    const first = writer.write(new Map([['t', [event('a')]]]));
    (await next(1)).fail(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
    await expect(first).rejects.toMatchObject({ cause: { code: 'GH_ERR_AUDIT_UNAVAILABLE' } });
    const retry = writer.write(new Map([['t', [event('a')]]]));
    for (let n = 2; ; n++) {
      const done = await Promise.race([retry.then(() => true), next(n).then((s) => (s.finish(), false))]);
      if (done) break;
    }
    expect((await collect(store)).map((r) => r.type)).toEqual(['audit.repaired', 'a']);
    await store.close();
  });

  it('batch: appends resolve before any fsync, and one fsync within the window covers them all (group commit)', async () => {
    const dir = freshDir();
    const { io, calls, next } = syncs();
    const store = new FileAuditStore(dir, { fsync: 'batch', batchWindowMs: 60_000, io });
    const writer = new ChainWriter(store);
    await writer.write(new Map([['t', [event('a')]]]));
    await writer.write(new Map([['t', [event('b')]]]));
    expect(calls).toHaveLength(0);
    expect(await store.recordedHead('t')).toBeUndefined();
    // The window ends (here: the store closes first): the new file's directory entry, then one fsync for both
    // batches, then the head is recorded.
    const closed = store.close();
    (await next(1)).finish();
    const sync = await next(2);
    expect(sync.path).toBe(chainFile(dir));
    sync.finish();
    await closed;
    expect(calls.filter(ofChain(dir))).toHaveLength(1);
    expect(await store.recordedHead('t')).toMatchObject({ seq: 2 });
  });

  it('off: never fsyncs, and records the head once the window ends', async () => {
    const dir = freshDir();
    const { io, calls } = syncs();
    const store = new FileAuditStore(dir, { fsync: 'off', batchWindowMs: 60_000, io });
    await store.append('t', GENESIS, chainEvents(GENESIS, [event('a')]));
    expect(await store.recordedHead('t')).toBeUndefined();
    await store.close();
    expect(await store.recordedHead('t')).toMatchObject({ seq: 1 });
    expect(calls).toHaveLength(0);
  });

  it("writes the window's head through the thread pool: appends go on while the head file is being replaced", async () => {
    // On ext4 a rename over an existing file waits for the new file's data (auto_da_alloc): ~1 ms, ~14 ms at p99 on a
    // busy disk, which a synchronous write made every call in flight wait for, once per window.
    const dir = freshDir();
    const replaced: { path: string; content: string; finish: () => void }[] = [];
    const io: Partial<ChainFileIo> = { replace: (path, content) => new Promise<void>((finish) => replaced.push({ path, content, finish })) };
    const store = new FileAuditStore(dir, { fsync: 'off', batchWindowMs: 1, io });
    await store.append('t', GENESIS, chainEvents(GENESIS, [event('a')]));
    for (let i = 0; i < 400 && replaced.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(replaced[0]).toMatchObject({ path: join(dir, 'audit', 't.head') });
    expect(JSON.parse(replaced[0].content)).toMatchObject({ seq: 1 });
    const head = await store.head('t');
    expect(await store.append('t', head, chainEvents(head, [event('b')]))).toEqual({ ok: true });
    let closed = false;
    const closing = store.close().then(() => (closed = true));
    while (!closed) {
      for (const r of replaced) r.finish();
      await new Promise((r) => setTimeout(r, 5));
    }
    await closing;
    expect(replaced.map((r) => JSON.parse(r.content).seq)).toEqual([1, 2]);
  });
});
