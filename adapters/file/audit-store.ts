import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { AuditFsync, AuditIndex, AuditStore, IndexedCall, TornTail } from '../../src/ports.ts';
import { GENESIS, type AuditRecord, type ChainHead } from '../../src/protocol/audit-record.ts';
import { GatewayError } from '../../src/errors.ts';
import { chainEvents, recordLine } from '../../src/protocol/audit-chain.ts';
import type { Logger } from '../../src/log.ts';
import { withFileLock } from './file-lock.ts';
import { writeFileAtomic } from './atomic-file.ts';
import { ChainFile, linesBackward, readRange, tailOf } from './chain-file.ts';
import { fileIo, type ChainFileIo } from './chain-file-io.ts';
import { HeldChainFile } from './held-chain-file.ts';
import { FileAuditIndex, type ChainPosition } from './audit-index.ts';

export type { ChainFileIo } from './chain-file-io.ts';

/** `fsync: batch`: every batch written is fsynced within this many ms (group commit: one fsync covers them all). */
export const BATCH_FSYNC_WINDOW_MS = 100;

/**
 * Batches up to this many bytes are written synchronously on the held file: a write(2) into the page cache takes
 * microseconds. Larger ones go through the thread pool, so the event loop serves calls meanwhile.
 */
export const SYNC_APPEND_MAX_BYTES = 64 * 1024;

export interface FileAuditStoreOptions {
  /** Default `batch`. */
  fsync?: AuditFsync;
  /** Default BATCH_FSYNC_WINDOW_MS. */
  batchWindowMs?: number;
  io?: Partial<ChainFileIo>;
  log?: Logger;
  /** The time of the records the store writes itself (`audit.repaired`). */
  now?: () => number;
  /** Default true: keep each chain's index (FileAuditIndex). Off, queries scan the chain; the bench compares both. */
  index?: boolean;
}

/** Where a chain's whole records end, where its newest one starts, and what that one is. */
interface Position {
  end: number;
  lastStart: number;
  head: ChainHead;
  /** The bytes of `[lastStart, end)`: the newest record's line and its newline. */
  last: Buffer;
}

/**
 * Audit chains as JSON Lines, one file per tenant under `<dataDir>/audit/`. Appends take a lock file and compare
 * the chain head first, so the gateway and the CLI in another process can both append without forking a chain.
 *
 * The store remembers where it left each chain and checks, before every append, that the file still ends there
 * (or that another writer continued it). It keeps the file open, so when nobody else touched it the check is a
 * stat and a read of the newest record, and a small batch one write(2), with no trip through the thread pool
 * (HeldChainFile). A chain whose newest records were removed is refused with
 * GH_ERR_AUDIT_TRUNCATED, never appended to. `<tenant>.head` keeps the head apart from the chain, written
 * atomically once the records it names are as durable as `fsync` makes them, and a chain is checked against it on
 * first use. Bytes after the last whole record (a write cut short by a crash or a full disk) are moved aside to
 * `<tenant>.jsonl.torn-<seq>-<ms>` and the chain cut back to its last whole record before the next append, which
 * records `audit.repaired` first; only the end of a file is ever repaired. `<tenant>.idx` indexes the chain's jobs,
 * sessions and seqs (FileAuditIndex), extended by each append under the same lock.
 */
export class FileAuditStore implements AuditStore, AuditIndex {
  private readonly dir: string;
  private readonly io: ChainFileIo;
  private readonly fsync: AuditFsync;
  private readonly windowMs: number;
  private readonly positions = new Map<string, Position>();
  /**
   * Chain files kept open between appends, opened by `append` under the lock. Each is used only by synchronous
   * calls, so closing one between turns of the event loop never cuts an operation short.
   */
  private readonly held = new Map<string, HeldChainFile>();
  /** Tenants whose last write here failed part-way: what follows their position is ours to drop. */
  private readonly failedWrites = new Set<string>();
  /** Tenants whose cut was logged, so a trail retrying every second logs it once. */
  private readonly reportedCuts = new Set<string>();
  /** The newest head appended per tenant and not yet recorded (`batch`: nor fsynced). */
  private readonly unsynced = new Map<string, ChainHead>();
  /** `batch`: a chain file was created since the last fsync, so the directory needs one too. */
  private newFiles = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private readonly index: FileAuditIndex | undefined;

  constructor(
    dataDir: string,
    private readonly options: FileAuditStoreOptions = {},
  ) {
    this.dir = join(dataDir, 'audit');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.io = { ...fileIo, ...options.io };
    this.fsync = options.fsync ?? 'batch';
    this.windowMs = options.batchWindowMs ?? BATCH_FSYNC_WINDOW_MS;
    this.index = options.index === false ? undefined : new FileAuditIndex({ chain: (t) => this.filePath(t), index: (t) => this.indexPath(t), lock: (t) => `${this.filePath(t)}.lock` }, options.log);
  }

  /** The head this store left, once it knows one: `append` checks the file under the lock in any case. */
  async head(tenant: string): Promise<ChainHead> {
    return (this.positions.get(tenant) ?? (await this.position(tenant)).at).head;
  }

  async append(tenant: string, expected: ChainHead, records: AuditRecord[]): Promise<{ ok: true } | { ok: false; head: ChainHead }> {
    const path = this.filePath(tenant);
    return withFileLock(`${path}.lock`, async () => {
      let { at, size } = this.unchanged(tenant) ?? (await this.reposition(tenant));
      if (size > at.end) at = await this.repair(tenant, at, size);
      if (at.head.seq !== expected.seq || at.head.hash !== expected.hash) return { ok: false as const, head: at.head };
      if (records.length > 0) await this.write(tenant, at, records);
      return { ok: true as const };
    });
  }

  /** From a seq past the first, reading starts at the record the index puts at or before it. */
  async *read(tenant: string, options: { fromSeq?: number } = {}): AsyncIterable<AuditRecord> {
    const path = this.filePath(tenant);
    const fromSeq = options.fromSeq ?? 0;
    const { wholeEnd } = await tailOf(path);
    if (wholeEnd === 0) return;
    const start = fromSeq > 1 && this.index ? Math.min(await this.index.startOf(tenant, fromSeq), wholeEnd - 1) : 0;
    const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8', start, end: wholeEnd - 1 }), crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of lines) {
      lineNo++;
      if (line === '') continue;
      const record = start === 0 ? parseLine(path, line, lineNo) : parseLine(path, line, undefined, start, lineNo);
      if (record.seq >= fromSeq) yield record;
    }
  }

  sessionCalls(tenant: string, session: string): Promise<IndexedCall[] | undefined> {
    return this.index?.sessionCalls(tenant, session) ?? Promise.resolve(undefined);
  }

  jobRecords(tenant: string, jobIds: readonly string[]): Promise<AuditRecord[][] | undefined> {
    return this.index?.jobRecords(tenant, jobIds) ?? Promise.resolve(undefined);
  }

  async *readBack(tenant: string): AsyncIterable<AuditRecord> {
    const path = this.filePath(tenant);
    const { wholeEnd } = await tailOf(path);
    for await (const { line, start } of linesBackward(path, wholeEnd)) yield parseLine(path, line, undefined, start);
  }

  async recordedHead(tenant: string): Promise<ChainHead | undefined> {
    const path = this.headPath(tenant);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const { seq, hash } = JSON.parse(text) as ChainHead;
      if (Number.isInteger(seq) && typeof hash === 'string') return { seq, hash };
    } catch {
      // reported below
    }
    // An empty or garbled head file (a crash while the file system wrote it) checks nothing; the chain still verifies.
    this.options.log?.warn(`the recorded audit head ${path} is unreadable; the chain is not checked against it until the next append rewrites it`);
    return undefined;
  }

  async tornTail(tenant: string): Promise<TornTail | undefined> {
    const path = this.filePath(tenant);
    const { size, wholeEnd } = await tailOf(path);
    if (size === wholeEnd) return undefined;
    const bytes = await readRange(path, wholeEnd, size);
    return { bytes: bytes.length, digest: digestOf(bytes) };
  }

  async tenants(): Promise<string[]> {
    const names = await readdir(this.dir);
    return names.filter((n) => n.endsWith('.jsonl')).map((n) => decodeURIComponent(n.slice(0, -6))).sort();
  }

  async close(): Promise<void> {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    await this.syncDue();
    this.index?.close();
    this.positions.clear();
    for (const tenant of [...this.held.keys()]) this.release(tenant);
  }

  filePath(tenant: string): string {
    return join(this.dir, `${encodeURIComponent(tenant)}.jsonl`);
  }

  /** The chain's index (FileAuditIndex): a cache beside it, rebuilt from it when missing. */
  indexPath(tenant: string): string {
    return join(this.dir, `${encodeURIComponent(tenant)}.idx`);
  }

  headPath(tenant: string): string {
    return join(this.dir, `${encodeURIComponent(tenant)}.head`);
  }

  /**
   * The common case, checked without leaving the event loop's turn: the file this store holds open is still the
   * chain's and ends in the record this store last wrote. Anything else takes the full check of `position`.
   */
  private unchanged(tenant: string): { at: Position; size: number } | undefined {
    const known = this.positions.get(tenant);
    const held = this.held.get(tenant);
    if (!known || !held || !held.endsWith(this.filePath(tenant), known.end, known.last)) return undefined;
    return { at: known, size: known.end };
  }

  /** The full check, on the file the path names now: the one held may have been replaced. */
  private reposition(tenant: string): Promise<{ at: Position; size: number }> {
    this.release(tenant);
    return this.position(tenant);
  }

  private release(tenant: string): void {
    const held = this.held.get(tenant);
    this.held.delete(tenant);
    held?.close();
  }

  /**
   * Where the chain's records end now, checked against where this store left it, or on first use against the
   * recorded head. `size` past `at.end` is a torn write to repair before the next append.
   */
  private async position(tenant: string): Promise<{ at: Position; size: number }> {
    const path = this.filePath(tenant);
    const known = this.positions.get(tenant);
    const file = await ChainFile.open(path);
    let size = 0;
    let wholeEnd = 0;
    try {
      if (file) size = file.size;
      if (known) {
        if (size < known.end) throw await this.cut(tenant, known.head, `the file holds ${size} bytes, ${known.end} when this process last wrote it`);
        if (known.end > 0 && hashOfLine((await file!.read(known.lastStart, known.end - 1)).toString('utf8')) !== known.head.hash) {
          throw await this.cut(tenant, known.head, `the record of seq ${known.head.seq} is no longer where this process wrote it`);
        }
        // Nothing after it, or only what a failed write of ours left: ours to repair.
        if (size === known.end || this.failedWrites.has(tenant)) return { at: known, size };
      }
      wholeEnd = file ? await file.wholeEnd() : 0;
    } finally {
      await file?.close();
    }
    if (known && wholeEnd < known.end) throw await this.cut(tenant, known.head, `its whole records end at byte ${wholeEnd}, ${known.end} when this process last wrote it`);
    let at: Position;
    if (known && wholeEnd === known.end) {
      at = known;
    } else {
      // First use, or another writer (the CLI, another gateway) continued the chain: its newest record is the head.
      at = await this.lastRecord(path, wholeEnd);
      if (!known) {
        const recorded = await this.recordedHead(tenant);
        if (recorded) await this.checkAgainst(tenant, at, recorded);
      }
    }
    this.positions.set(tenant, at);
    this.reportedCuts.delete(tenant);
    return { at, size };
  }

  /** The chain must reach its recorded head and pass through it: records after it are newer than its last update. */
  private async checkAgainst(tenant: string, at: Position, recorded: ChainHead): Promise<void> {
    if (at.head.seq < recorded.seq) throw await this.cut(tenant, recorded, `the chain ends at seq ${at.head.seq}, before its recorded head`, at.head);
    if (at.head.seq === recorded.seq) {
      if (at.head.hash !== recorded.hash) throw await this.cut(tenant, recorded, `its newest record is not the one its head records`, at.head);
      return;
    }
    for await (const record of this.readBack(tenant)) {
      if (record.seq > recorded.seq) continue;
      if (record.seq === recorded.seq && record.hash === recorded.hash) return;
      break;
    }
    throw await this.cut(tenant, recorded, `its record of seq ${recorded.seq} is not the one its head records`, at.head);
  }

  /**
   * A cut: logged loudly (once until the chain checks out again), the head this process knew written down so a
   * restart sees the cut too, and the error every append now gets.
   */
  private async cut(tenant: string, recorded: ChainHead, why: string, chainHead?: ChainHead): Promise<GatewayError> {
    this.positions.delete(tenant);
    const headPath = this.headPath(tenant);
    const written = await this.recordedHead(tenant).catch(() => undefined);
    if (!written || written.seq < recorded.seq) this.writeHead(tenant, recorded);
    const error = new GatewayError(
      'GH_ERR_AUDIT_TRUNCATED',
      `the audit chain of tenant ${tenant} (${this.filePath(tenant)}) was cut: ${why}. Its head is seq ${recorded.seq} (${recorded.hash}). Nothing more is appended to it until ` +
        `the missing records are restored, or ${headPath} is moved aside to accept the chain as it stands; \`gatehouse audit verify\` shows both`,
      { data: { tenant, path: this.filePath(tenant), recordedHead: recorded, ...(chainHead ? { chainHead } : {}) } },
    );
    if (!this.reportedCuts.has(tenant)) {
      this.reportedCuts.add(tenant);
      this.options.log?.error(error.message, { code: error.code });
    }
    return error;
  }

  /**
   * Moves what follows the last whole record aside (never deleted), cuts the file back to it, and records that in
   * the chain. After a failed write of this process, that is exactly what the write left.
   */
  private async repair(tenant: string, at: Position, size: number): Promise<Position> {
    const path = this.filePath(tenant);
    const dropped = await readRange(path, at.end, size);
    const now = (this.options.now ?? Date.now)();
    const aside = `${path}.torn-${at.head.seq}-${now}`;
    await writeFile(aside, dropped, { mode: 0o600, flag: 'wx' });
    await truncate(path, at.end);
    const ours = this.failedWrites.delete(tenant);
    const data = {
      droppedBytes: dropped.length,
      droppedDigest: digestOf(dropped),
      afterSeq: at.head.seq,
      keptAs: basename(aside),
      reason: ours ? 'a write of this process failed part-way (a full or failing disk)' : 'a write was cut short (a crash or a full disk) before this process opened the chain',
    };
    this.options.log?.warn(`repaired the audit chain of tenant ${tenant}: dropped a torn write of ${dropped.length} bytes after seq ${at.head.seq}, kept in ${aside}`);
    return this.write(tenant, at, chainEvents(at.head, [{ tenant, at: now, type: 'audit.repaired', actor: 'audit-store', data }]));
  }

  private async write(tenant: string, at: Position, records: AuditRecord[]): Promise<Position> {
    const path = this.filePath(tenant);
    const lines = records.map(recordLine);
    const data = Buffer.from(lines.join('\n') + '\n');
    try {
      if (data.length <= SYNC_APPEND_MAX_BYTES) {
        // Opened here, under the lock, once the chain was checked: never while another append of ours runs.
        let held = this.held.get(tenant);
        if (!held) this.held.set(tenant, (held = HeldChainFile.open(path)));
        this.io.appendSync(held.fd, data);
      } else {
        await this.io.append(path, data);
      }
      if (this.fsync === 'always') {
        await this.io.sync(path);
        // A new file's name must be durable too, once.
        if (at.end === 0) await this.io.sync(this.dir);
      }
    } catch (err) {
      // Whatever part of it reached the file is dropped (and recorded) before the next append.
      this.failedWrites.add(tenant);
      throw new GatewayError('GH_ERR_AUDIT_UNAVAILABLE', `could not write the audit chain ${path}: ${(err as Error).message}`, { cause: err, data: { tenant, path } });
    }
    const last = records[records.length - 1];
    const end = at.end + data.length;
    const lastLength = Buffer.byteLength(lines[lines.length - 1]) + 1;
    // A copy: a slice would keep the whole batch's buffer alive until the next append.
    const next: Position = { end, lastStart: end - lastLength, head: { seq: last.seq, hash: last.hash }, last: Buffer.from(data.subarray(data.length - lastLength)) };
    this.positions.set(tenant, next);
    this.index?.appended(tenant, coverOf(at), records, lines, coverOf(next));
    if (this.fsync === 'always') {
      this.writeHead(tenant, next.head);
    } else {
      // Once per window, like the fsync of `batch` (which `off` skips): a head file per batch would cost as much as the write.
      this.unsynced.set(tenant, next.head);
      if (at.end === 0) this.newFiles = true;
      this.scheduleSync();
    }
    return next;
  }

  /**
   * Once per window: `batch` fsyncs each chain written since (one fsync covers every batch), then records its head;
   * `off` only records the head.
   */
  private scheduleSync(): void {
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      void this.syncDue();
    }, this.windowMs);
    this.syncTimer.unref();
  }

  private async syncDue(): Promise<void> {
    while (this.syncing) await this.syncing;
    if (this.unsynced.size === 0) return;
    const due = new Map(this.unsynced);
    this.unsynced.clear();
    const newFiles = this.newFiles;
    this.newFiles = false;
    this.syncing = (async () => {
      if (newFiles && this.fsync === 'batch') {
        await this.io.sync(this.dir).catch((err: Error) => {
          this.newFiles = true;
          this.options.log?.error(`could not fsync the audit directory ${this.dir}; trying again`, { error: err.message });
        });
      }
      for (const [tenant, head] of due) {
        try {
          if (this.fsync === 'batch') await this.io.sync(this.filePath(tenant));
          // Only a synced head is recorded: a head ahead of the durable chain would read as a cut after a crash.
          this.writeHead(tenant, head);
        } catch (err) {
          this.options.log?.error(`could not fsync the audit chain ${this.filePath(tenant)}; trying again`, { error: (err as Error).message });
          if (!this.unsynced.has(tenant)) this.unsynced.set(tenant, head);
          this.scheduleSync();
        }
      }
    })().finally(() => (this.syncing = undefined));
    await this.syncing;
  }

  /** Never fails an append: a head file left behind only checks less. */
  private writeHead(tenant: string, head: ChainHead): void {
    try {
      writeFileAtomic(this.headPath(tenant), JSON.stringify({ seq: head.seq, hash: head.hash }) + '\n');
    } catch (err) {
      this.options.log?.warn(`could not record the audit head of tenant ${tenant}`, { error: (err as Error).message });
    }
  }

  private async lastRecord(path: string, end: number): Promise<Position> {
    for await (const { line, start } of linesBackward(path, end)) {
      const record = parseLine(path, line, undefined, start);
      // Re-encoded: a line that is not valid UTF-8 then never matches, and each append takes the full check.
      return { end, lastStart: start, head: { seq: record.seq, hash: record.hash }, last: Buffer.from(line + '\n') };
    }
    return { end, lastStart: 0, head: GENESIS, last: Buffer.alloc(0) };
  }
}

function coverOf(at: Position): ChainPosition {
  return { end: at.end, lastStart: at.lastStart, seq: at.head.seq, hash: at.head.hash };
}

/** Where a bad line is: its line number, its byte offset, or its line number counted from `offset`. */
function parseLine(path: string, line: string, lineNo?: number, offset?: number, lineAfter?: number): AuditRecord {
  try {
    return JSON.parse(line) as AuditRecord;
  } catch (err) {
    const where = lineNo !== undefined ? `${path}:${lineNo}` : lineAfter !== undefined ? `${path}, line ${lineAfter} from byte ${offset}` : `${path} at byte ${offset}`;
    throw new GatewayError('GH_ERR_DATA_CORRUPT', `${where} is not valid JSON`, { cause: err, data: { path, ...(lineNo !== undefined ? { line: lineNo } : { offset }) } });
  }
}

function hashOfLine(line: string): string | undefined {
  try {
    return (JSON.parse(line) as AuditRecord).hash;
  } catch {
    return undefined;
  }
}

function digestOf(bytes: Buffer): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}
