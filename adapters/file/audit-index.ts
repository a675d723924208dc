import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { open, readFile, rename, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { IndexedCall } from '../../src/ports.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import type { Logger } from '../../src/log.ts';
import { followsTurn, withFileLock, type LockTurn } from './file-lock.ts';
import { writeFileAtomic } from './atomic-file.ts';
import { HeldChainFile } from './held-chain-file.ts';
import type { ChainSegments, SegmentReader } from './chain-segments.ts';
import { INDEX_HEADER, IndexChunk, NOTHING_COVERED, entryLine, keyField, lastMark, markLine, type IndexCover, type IndexEntry } from './audit-index-chunk.ts';

/** A view kept this long after its last use; the next query past it loads the index file again. */
const VIEW_IDLE_MS = 60_000;
/** How many chunks a view grows by before it is loaded again as one. */
const MAX_CHUNKS = 16;

/** Where a chain stands after an append: the same facts a mark records. */
export type ChainPosition = IndexCover;

export interface ChainPaths {
  /** The chain's files; offsets are logical (across its segments), so entries stay valid when the active file is sealed. */
  chain: ChainSegments;
  index(tenant: string): string;
  lock(tenant: string): string;
}

/** An index file as loaded: its chunks, what they cover, and the file they came from. */
interface View {
  chunks: IndexChunk[];
  cover: IndexCover;
  ino: bigint;
  /** Bytes of the file up to the end of the last mark. */
  length: number;
  idle?: NodeJS.Timeout;
}

/** The writer's side: the index file held open, as this process last left it. */
interface Writer {
  held: HeldChainFile;
  length: number;
  mark: Buffer;
  chainEnd: number;
}

/**
 * The index of each file chain (`<tenant>.idx`, format in audit-index-chunk.ts): where each job's records, each
 * session's calls and each seq are in the chain, so a query reads only those records.
 *
 * A cache, never the truth. Appends extend it in the same locked turn as the chain (a write(2) more per batch),
 * but only when it ends exactly where the chain did: otherwise it is left stale. Before answering, it is checked
 * against the chain (the record its last mark names must be there, with that hash) and brought up to date by
 * reading the records past its mark, or rebuilt from the whole chain when it is missing, corrupt or from another
 * chain (one repaired, restored or replaced). Every record read through it is checked to be the one asked for; a
 * mismatch drops the index (rebuilt on next use) and the caller scans instead. A crash can only leave lines past
 * the last mark, which are ignored, or an index ahead of a chain that lost its unsynced tail, which fails the check.
 */
export class FileAuditIndex {
  private readonly views = new Map<string, View>();
  private readonly writers = new Map<string, Writer>();
  /** The chain lock's turn that last extended each index (see `appended`). */
  private readonly lastTurns = new Map<string, LockTurn>();
  private readonly broken = new Set<string>();
  private readonly warned = new Set<string>();

  constructor(
    private readonly paths: ChainPaths,
    private readonly log?: Logger,
  ) {}

  /**
   * Called under the chain's lock once `records` (as `lines`) were written at `from.end`: adds their entries when
   * the index ends where the chain did. Never throws: an index left behind is brought up to date when next read.
   * `turn`: the chain lock's turn of the append. One right after the turn that last extended the index (the lock
   * held without a break) finds the index as it left it, and skips the check of its file.
   */
  appended(tenant: string, from: ChainPosition, records: readonly AuditRecord[], lines: readonly string[], to: ChainPosition, turn?: LockTurn): void {
    const untouched = turn !== undefined && followsTurn(turn, this.lastTurns.get(tenant));
    this.lastTurns.delete(tenant);
    try {
      const writer = this.writerAt(tenant, from, untouched);
      if (!writer) return;
      let offset = from.end;
      let text = '';
      records.forEach((record, i) => {
        text += entryLine(record, offset);
        offset += Buffer.byteLength(lines[i]) + 1;
      });
      const mark = Buffer.from(markLine(to));
      const data = Buffer.concat([Buffer.from(text), mark]);
      for (let done = 0; done < data.length; ) done += writeSync(writer.held.fd, data, done, data.length - done);
      writer.length += data.length;
      writer.mark = mark;
      writer.chainEnd = to.end;
      if (turn) this.lastTurns.set(tenant, turn);
    } catch (err) {
      this.release(tenant);
      this.warnOnce(tenant, `could not extend the audit index ${this.paths.index(tenant)}; it is brought up to date when next read`, err);
    }
  }

  async sessionCalls(tenant: string, session: string): Promise<IndexedCall[] | undefined> {
    const view = await this.current(tenant);
    if (!view) return undefined;
    const key = keyField(session);
    const calls: IndexedCall[] = [];
    for (const chunk of view.chunks) for (const entry of chunk.sessionEntries(key)) if (entry.jobId !== undefined) calls.push({ seq: entry.seq, jobId: entry.jobId });
    return calls;
  }

  async jobRecords(tenant: string, jobIds: readonly string[]): Promise<AuditRecord[][] | undefined> {
    const view = await this.current(tenant);
    if (!view) return undefined;
    const found: AuditRecord[][] = [];
    // One reader for the page: the chain's files are listed once.
    const reader = await this.paths.chain.reader(tenant);
    try {
      for (const jobId of jobIds) {
        const key = keyField(jobId);
        const entries = view.chunks.flatMap((chunk) => chunk.jobEntries(key));
        const records = entries.length === 0 ? [] : this.readEntries(tenant, reader, entries, (record, entry) => record.jobId === jobId && record.seq === entry.seq);
        if (!records) return undefined;
        found.push(records);
      }
    } finally {
      reader.close();
    }
    return found;
  }

  /** Where to start reading the chain for records from `fromSeq` on: the line of a record at or before it, or 0. */
  async startOf(tenant: string, fromSeq: number): Promise<number> {
    const view = await this.current(tenant);
    if (!view) return 0;
    let floor: IndexEntry | undefined;
    for (let i = view.chunks.length - 1; i >= 0 && !floor; i--) floor = view.chunks[i].floor(fromSeq);
    if (!floor) return 0;
    const reader = await this.paths.chain.reader(tenant);
    try {
      const [record] = this.readEntries(tenant, reader, [floor], (r, entry) => r.seq === entry.seq) ?? [];
      return record ? floor.offset : 0;
    } finally {
      reader.close();
    }
  }

  close(): void {
    for (const tenant of [...this.writers.keys()]) this.release(tenant);
    for (const view of this.views.values()) clearTimeout(view.idle);
    this.views.clear();
  }

  /** The writer for an index that ends where the chain did before this append, or undefined when it does not. */
  private writerAt(tenant: string, from: ChainPosition, untouched: boolean): Writer | undefined {
    const path = this.paths.index(tenant);
    const known = this.writers.get(tenant);
    if (known && known.chainEnd === from.end && (untouched || known.held.endsWith(path, known.length, known.mark))) return known;
    this.release(tenant);
    if (from.end === 0) {
      // A new chain starts a new index: whatever file was there indexed another chain.
      writeFileAtomic(path, INDEX_HEADER);
      return this.hold(tenant, path, INDEX_HEADER.length, Buffer.from(INDEX_HEADER), 0);
    }
    const fd = openIfAnySync(path);
    if (fd === undefined) return undefined;
    let tail: Buffer;
    let size: number;
    try {
      size = fstatSync(fd).size;
      const look = Math.min(size, 4096);
      tail = Buffer.alloc(look);
      readSync(fd, tail, 0, look, size - look);
    } finally {
      closeSync(fd);
    }
    const mark = lastMark(tail);
    if (!mark || mark.cover.end !== from.end || mark.cover.seq !== from.seq || mark.cover.hash !== from.hash) return undefined;
    const length = size - tail.length + mark.length;
    const markStart = tail.lastIndexOf('\n#\t', mark.length - 2) + 1;
    const writer = this.hold(tenant, path, length, Buffer.from(tail.subarray(markStart, mark.length)), from.end);
    // What follows the mark is a write cut short: dropped before ours goes after it.
    if (size > length) ftruncateSync(writer.held.fd, length);
    return writer;
  }

  private hold(tenant: string, path: string, length: number, mark: Buffer, chainEnd: number): Writer {
    const writer = { held: HeldChainFile.open(path), length, mark, chainEnd };
    this.writers.set(tenant, writer);
    return writer;
  }

  private release(tenant: string): void {
    const writer = this.writers.get(tenant);
    this.writers.delete(tenant);
    writer?.held.close();
  }

  /** The view of the index, checked against the chain and brought up to its end; undefined when that failed. */
  private async current(tenant: string): Promise<View | undefined> {
    try {
      const { start, end: wholeEnd } = await this.paths.chain.extent(tenant);
      let view = this.broken.delete(tenant) ? undefined : await this.refreshed(tenant);
      if (view && !(await this.covers(tenant, view.cover, wholeEnd))) view = undefined;
      if (!view) view = await this.rebuild(tenant, start, wholeEnd);
      else if (view.cover.end < wholeEnd) view = await this.catchUp(tenant, view, wholeEnd);
      this.keep(tenant, view);
      return view;
    } catch (err) {
      this.views.delete(tenant);
      this.warnOnce(tenant, `the audit index ${this.paths.index(tenant)} could not be used; queries read the chain instead`, err);
      return undefined;
    }
  }

  /** The view kept, extended by what appends added to the file since; or the file loaded afresh. */
  private async refreshed(tenant: string): Promise<View | undefined> {
    const path = this.paths.index(tenant);
    const now = await stat(path, { bigint: true }).catch(() => undefined);
    if (!now) return undefined;
    const kept = this.views.get(tenant);
    if (kept && kept.ino === now.ino && Number(now.size) >= kept.length && kept.chunks.length < MAX_CHUNKS) {
      if (Number(now.size) === kept.length) return kept;
      const added = await readFrom(path, kept.length);
      const mark = lastMark(added);
      if (!mark) return kept;
      return { ...kept, chunks: [...kept.chunks, new IndexChunk(added.subarray(0, mark.length))], cover: mark.cover, length: kept.length + mark.length };
    }
    const text = await readFile(path);
    if (!text.subarray(0, INDEX_HEADER.length).equals(Buffer.from(INDEX_HEADER))) return undefined;
    const mark = lastMark(text);
    const length = mark?.length ?? INDEX_HEADER.length;
    return { chunks: [new IndexChunk(text.subarray(INDEX_HEADER.length, length))], cover: mark?.cover ?? NOTHING_COVERED, ino: now.ino, length };
  }

  /** Whether the chain still holds the record the index's last mark names, where it names it. */
  private async covers(tenant: string, cover: IndexCover, wholeEnd: number): Promise<boolean> {
    if (cover.end === 0) return true;
    if (cover.end > wholeEnd) return false;
    const reader = await this.paths.chain.reader(tenant);
    try {
      const record = reader.recordAt(cover.lastStart);
      // Removed by retention: the chain's newest records are kept, so the index is from another chain.
      return typeof record === 'object' && record.seq === cover.seq && record.hash === cover.hash;
    } catch {
      return false;
    } finally {
      reader.close();
    }
  }

  /** Indexes the chain's records past the view's mark and appends them to the file, unless another writer did. */
  private async catchUp(tenant: string, view: View, wholeEnd: number): Promise<View> {
    const { text, cover } = await this.entriesOf(tenant, view.cover.end, wholeEnd);
    const path = this.paths.index(tenant);
    let length = view.length;
    let kept = false;
    await withFileLock(this.paths.lock(tenant), async () => {
      const now = await stat(path, { bigint: true }).catch(() => undefined);
      if (!now || now.ino !== view.ino) return;
      // Past the view's length there is only a torn write, unless an append extended the index meanwhile.
      if (Number(now.size) > view.length && lastMark(await readFrom(path, view.length))) return;
      if (Number(now.size) > view.length) await truncate(path, view.length);
      await writeFile(path, text, { flag: 'a' });
      length += text.length;
      kept = true;
    }).catch((err: unknown) => this.warnOnce(tenant, `could not extend the audit index ${path}; it is caught up in memory for each query`, err));
    // A view the file does not hold is used once, then loaded afresh: the file has other entries past its length.
    return { ...view, chunks: [...view.chunks, new IndexChunk(text)], cover, length, ino: kept ? view.ino : -1n };
  }

  /** Indexes the whole chain (what retention kept of it) into a new file, written aside and renamed over the old one. */
  private async rebuild(tenant: string, start: number, wholeEnd: number): Promise<View> {
    const { text, cover } = await this.entriesOf(tenant, start, wholeEnd);
    const path = this.paths.index(tenant);
    const content = Buffer.concat([Buffer.from(INDEX_HEADER), text]);
    if (wholeEnd > 0) this.log?.info(`rebuilt the audit index ${path}: ${wholeEnd} bytes of chain, ${content.length} bytes of index`);
    let ino = -1n;
    if (wholeEnd > 0) {
      // An index that cannot be written (a read-only data dir) still answers this query.
      await withFileLock(this.paths.lock(tenant), async () => {
        const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
        await writeFile(tmp, content, { mode: 0o600 });
        await rename(tmp, path);
        ino = (await stat(path, { bigint: true })).ino;
      }).catch((err: unknown) => this.warnOnce(tenant, `could not write the audit index ${path}; it is rebuilt in memory for each query`, err));
    }
    return { chunks: [new IndexChunk(text)], cover, ino, length: content.length };
  }

  /** The entries of the chain's records in `[start, end)` (whole lines), closed by their mark. */
  private async entriesOf(tenant: string, start: number, end: number): Promise<{ text: Buffer; cover: IndexCover }> {
    const parts: string[] = [];
    let cover = NOTHING_COVERED;
    for await (const { line, start: at } of this.paths.chain.linesForward(tenant, start, end)) {
      const record = JSON.parse(line) as AuditRecord;
      parts.push(entryLine(record, at));
      cover = { end: at + Buffer.byteLength(line) + 1, lastStart: at, seq: record.seq, hash: record.hash };
    }
    if (cover.end > 0) parts.push(markLine(cover));
    return { text: Buffer.from(parts.join('')), cover };
  }

  /**
   * The records the entries point at, each checked by `matches`; undefined when one is not what the index says,
   * which drops the index until it is rebuilt. Entries of records retention removed answer nothing.
   */
  private readEntries(tenant: string, reader: SegmentReader, entries: readonly IndexEntry[], matches: (record: AuditRecord, entry: IndexEntry) => boolean): AuditRecord[] | undefined {
    // Synchronous: a record is a read of a few hundred bytes, where a thread-pool round trip would cost more.
    const records: AuditRecord[] = [];
    for (const entry of entries) {
      const record = reader.recordAt(entry.offset);
      if (record === 'gone') continue;
      if (!record || !matches(record, entry)) {
        this.broken.add(tenant);
        this.views.delete(tenant);
        this.log?.warn(`the audit index ${this.paths.index(tenant)} does not match its chain at seq ${entry.seq}; it is rebuilt on next use`);
        return undefined;
      }
      records.push(record);
    }
    return records;
  }

  private keep(tenant: string, view: View): void {
    const old = this.views.get(tenant);
    if (old) clearTimeout(old.idle);
    view.idle = setTimeout(() => this.views.get(tenant) === view && this.views.delete(tenant), VIEW_IDLE_MS);
    view.idle.unref();
    this.views.set(tenant, view);
  }

  private warnOnce(tenant: string, message: string, err: unknown): void {
    if (this.warned.has(tenant)) return;
    this.warned.add(tenant);
    this.log?.warn(message, { error: (err as Error).message });
  }
}

async function readExactly(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

async function readFrom(path: string, start: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    return await readExactly(handle, start, Math.max(0, size - start));
  } finally {
    await handle.close();
  }
}

function openIfAnySync(path: string): number | undefined {
  try {
    return openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
