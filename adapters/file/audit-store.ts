import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { mkdir, readdir, rename, truncate, unlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { AuditFsync, AuditIndex, AuditStore, IndexedCall, TornTail } from '../../src/ports.ts';
import { GENESIS, type AuditRecord, type ChainHead } from '../../src/protocol/audit-record.ts';
import { GatewayError } from '../../src/errors.ts';
import { chainEvents, recordLine } from '../../src/protocol/audit-chain.ts';
import type { Logger } from '../../src/log.ts';
import { withFileLock, type LockTurn } from './file-lock.ts';
import { writeFileAtomic } from './atomic-file.ts';
import { ChainFile, linesBackward, linesForward, readRange, readTextIfAny, tailOf } from './chain-file.ts';
import { ChainSegments, SegmentReader, type ChainPart } from './chain-segments.ts';
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

/** `audit.segmentBytes` unset: a chain file is sealed into a segment once it holds 64 MiB. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

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
  /**
   * Seal the active file into `<tenant>.segments/` once it holds at least this many bytes and a batch ends in a signed
   * checkpoint (the chain writer adds one when `segmentFull` says so). Unset: one file that grows (the CLI's stores).
   */
  segmentBytes?: number;
  /** Remove old sealed segments (after each seal, and at a tenant's first append here). Unset: nothing is removed. */
  retention?: RetentionOptions;
}

export interface RetentionOptions {
  /** Sealed segments whose newest record is older than this (ms) are removed. */
  maxAgeMs?: number;
  /** The oldest sealed segments are removed while the chain's files hold more than this many bytes. */
  maxBytes?: number;
  /** The lowest seq every audit sink has delivered of the tenant's chain: records after it are never removed. */
  delivered?: (tenant: string) => Promise<number>;
}

/** The record type a sealed segment must end in: only a signed checkpoint can anchor what follows it (src/audit/checkpoint.ts). */
const CHECKPOINT_TYPE = 'audit.checkpoint';
/**
 * How long the chain's lock is kept after an append for the next one (file-lock.ts): longer than the gaps between a
 * busy gateway's appends, short enough that an idle gateway soon leaves it to the CLI (which also gets it at once
 * by asking).
 */
const CHAIN_LOCK_KEEP_MS = 50;

/**
 * Where a chain's whole records end, where its newest one starts, and what that one is. `end` and `lastStart` are
 * bytes of the active file, which starts `base` bytes into the chain; right after a seal the active file is empty and
 * `lastStart` is negative (the newest record ends the sealed segment before it).
 */
interface Position {
  base: number;
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
  private readonly segments: ChainSegments;
  /** Tenants whose retention was applied by this store since it opened them. */
  private readonly pruned = new Set<string>();

  constructor(
    dataDir: string,
    private readonly options: FileAuditStoreOptions = {},
  ) {
    this.dir = join(dataDir, 'audit');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.io = { ...fileIo, ...options.io };
    this.fsync = options.fsync ?? 'batch';
    this.windowMs = options.batchWindowMs ?? BATCH_FSYNC_WINDOW_MS;
    this.segments = new ChainSegments(this.dir);
    this.index = options.index === false ? undefined : new FileAuditIndex({ chain: this.segments, index: (t) => this.indexPath(t), lock: (t) => `${this.filePath(t)}.lock` }, options.log);
  }

  /** The head this store left, once it knows one: `append` checks the file under the lock in any case. */
  async head(tenant: string): Promise<ChainHead> {
    return (this.positions.get(tenant) ?? (await this.position(tenant)).at).head;
  }

  async append(tenant: string, expected: ChainHead, records: AuditRecord[]): Promise<{ ok: true } | { ok: false; head: ChainHead }> {
    const path = this.filePath(tenant);
    return withFileLock(`${path}.lock`, async (turn) => {
      // Checked on every append, kept lock or not: a cut or a replaced file is noticed at once, whoever made it.
      let { at, size } = this.unchanged(tenant) ?? (await this.reposition(tenant));
      if (size > at.end) at = await this.repair(tenant, at, size);
      if (at.head.seq !== expected.seq || at.head.hash !== expected.hash) return { ok: false as const, head: at.head };
      let sealed = false;
      if (records.length > 0) {
        at = await this.write(tenant, at, records, turn);
        if (this.segmentBytes !== undefined && at.end >= this.segmentBytes && records.at(-1)!.type === CHECKPOINT_TYPE) {
          at = await this.seal(tenant, at);
          sealed = true;
        }
      }
      if (this.options.retention && (sealed || !this.pruned.has(tenant))) await this.prune(tenant, at);
      return { ok: true as const };
    }, { keepMs: CHAIN_LOCK_KEEP_MS });
  }

  /** Whether the active file reached `segmentBytes`: it is sealed after the next batch that ends in a checkpoint. */
  segmentFull(tenant: string): boolean {
    const at = this.positions.get(tenant);
    return this.segmentBytes !== undefined && at !== undefined && at.end >= this.segmentBytes;
  }

  /** The record retention anchored the chain on: the newest removed record, a signed checkpoint. */
  anchor(tenant: string): Promise<AuditRecord | undefined> {
    return this.segments.anchor(tenant);
  }

  private get segmentBytes(): number | undefined {
    return this.options.segmentBytes;
  }

  /**
   * Across the sealed segments, then the active file. From a seq past the first, reading starts at the record the
   * index puts at or before it, else at the segment holding it. A seal while reading shows as a jump in the seqs
   * (the file the path names is already the next one) or as a new segment once done: either way the segments are
   * listed again and reading goes on from the next seq. A jump seen twice is the chain's (a missing segment, records
   * before the retention anchor): it is read as it is, for verify to report.
   */
  async *read(tenant: string, options: { fromSeq?: number } = {}): AsyncIterable<AuditRecord> {
    let next = options.fromSeq ?? 0;
    let listedAt: number | undefined;
    let jumpAt: number | undefined;
    for (let pass = 0; ; pass++) {
      const { parts, activeStart } = await this.segments.parts(tenant);
      if (activeStart === listedAt && jumpAt === undefined) return;
      listedAt = activeStart;
      const end = parts.at(-1)!.end;
      if (end === parts[0].start) return;
      const start = next > 1 && this.index ? Math.min(await this.index.startOf(tenant, next), end - 1) : 0;
      const jumped = jumpAt;
      jumpAt = undefined;
      reading: for (const [i, part] of parts.entries()) {
        if (part.end <= start || part.end === part.start) continue;
        const following = parts[i + 1]?.firstSeq;
        if (following !== undefined && following <= next) continue;
        const from = Math.max(start, part.start) - part.start;
        let lineNo = 0;
        // Lines parsed here, not in a generator of its own: a second async hop per record would cost a third more.
        for await (const line of linesOf(part, from)) {
          lineNo++;
          if (line === '') continue;
          const record = from === 0 && pass === 0 ? parseLine(part.path, line, lineNo) : parseLine(part.path, line, undefined, from, lineNo);
          if (record.seq < next) continue;
          if (record.seq > next && next > 0 && jumped !== next) {
            jumpAt = next;
            break reading;
          }
          next = record.seq + 1;
          yield record;
        }
      }
    }
  }

  sessionCalls(tenant: string, session: string): Promise<IndexedCall[] | undefined> {
    return this.index?.sessionCalls(tenant, session) ?? Promise.resolve(undefined);
  }

  jobRecords(tenant: string, jobIds: readonly string[]): Promise<AuditRecord[][] | undefined> {
    return this.index?.jobRecords(tenant, jobIds) ?? Promise.resolve(undefined);
  }

  /** The active file, then the sealed segments newest first, listed once the active file is read (a seal meanwhile is among them). */
  async *readBack(tenant: string): AsyncIterable<AuditRecord> {
    const path = this.filePath(tenant);
    const { wholeEnd } = await tailOf(path);
    let below = Infinity;
    for await (const { line, start } of linesBackward(path, wholeEnd)) {
      const record = parseLine(path, line, undefined, start);
      below = record.seq;
      yield record;
    }
    for (const segment of (await this.segments.sealed(tenant)).reverse()) {
      for await (const { line, start } of linesBackward(segment.path, segment.size)) {
        const record = parseLine(segment.path, line, undefined, start);
        if (record.seq >= below) continue;
        below = record.seq;
        yield record;
      }
    }
  }

  async recordedHead(tenant: string): Promise<ChainHead | undefined> {
    const path = this.headPath(tenant);
    const text = await readTextIfAny(path);
    if (text === undefined) return undefined;
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
    const tenants = new Set(names.filter((n) => n.endsWith('.jsonl')).map((n) => decodeURIComponent(n.slice(0, -6))));
    // A seal renames the active file before it creates the next one.
    for (const n of names) if (n.endsWith('.segments')) tenants.add(decodeURIComponent(n.slice(0, -9)));
    return [...tenants].sort();
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
    let known = this.positions.get(tenant);
    const { parts, activeStart } = await this.segments.parts(tenant);
    let sealedByOther = false;
    if (known && known.base !== activeStart) {
      // Another writer sealed the file this store knew: the record it left last must still be where it was.
      const reader = new SegmentReader(parts);
      let record;
      try {
        record = reader.recordAt(known.base + known.lastStart);
      } finally {
        reader.close();
      }
      if (typeof record !== 'object' || record.hash !== known.head.hash) throw await this.cut(tenant, known.head, `the record of seq ${known.head.seq} is no longer where this process wrote it`);
      known = undefined;
      sealedByOther = true;
    }
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
      at = await this.lastRecord(path, wholeEnd, activeStart, parts);
      if (!known && !sealedByOther) {
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
    // A head older than the retention anchor names a removed record: the signed anchor stands for it.
    const anchor = await this.segments.anchor(tenant);
    if (anchor && recorded.seq < anchor.seq) return;
    if (anchor && recorded.seq === anchor.seq && recorded.hash === anchor.hash) return;
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
    if (!written || written.seq < recorded.seq) await this.writeHead(tenant, recorded);
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

  private async write(tenant: string, at: Position, records: AuditRecord[], turn?: LockTurn): Promise<Position> {
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
    const next: Position = { base: at.base, end, lastStart: end - lastLength, head: { seq: last.seq, hash: last.hash }, last: Buffer.from(data.subarray(data.length - lastLength)) };
    this.positions.set(tenant, next);
    this.index?.appended(tenant, coverOf(at), records, lines, coverOf(next), turn);
    if (this.fsync === 'always') {
      await this.writeHead(tenant, next.head);
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
          await this.writeHead(tenant, head);
        } catch (err) {
          this.options.log?.error(`could not fsync the audit chain ${this.filePath(tenant)}; trying again`, { error: (err as Error).message });
          if (!this.unsynced.has(tenant)) this.unsynced.set(tenant, head);
          this.scheduleSync();
        }
      }
    })().finally(() => (this.syncing = undefined));
    await this.syncing;
  }

  /**
   * Seals the active file: fsynced (the batch timer only syncs the active file), renamed into `<tenant>.segments/`
   * under its first seq and logical start, and an empty active file created. One rename and one fsync per segment.
   */
  private async seal(tenant: string, at: Position): Promise<Position> {
    const path = this.filePath(tenant);
    let firstSeq = at.head.seq;
    for await (const { line } of linesForward(path, 0, at.end)) {
      firstSeq = parseLine(path, line, 1).seq;
      break;
    }
    this.release(tenant);
    const dir = this.segments.segmentDir(tenant);
    const target = this.segments.segmentPath(tenant, firstSeq, at.base);
    try {
      if (this.fsync !== 'off') await this.io.sync(path);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await rename(path, target);
      await writeFile(path, '', { mode: 0o600, flag: 'wx' });
      if (this.fsync !== 'off') {
        await this.io.sync(dir);
        await this.io.sync(this.dir);
      }
    } catch (err) {
      // The records are written; a seal left half done is finished by the next one (the active file is created on write).
      this.positions.delete(tenant);
      this.options.log?.error(`could not seal the audit chain ${path} into ${target}`, { error: (err as Error).message });
      return at;
    }
    const next: Position = { base: at.base + at.end, end: 0, lastStart: at.lastStart - at.end, head: at.head, last: Buffer.alloc(0) };
    this.positions.set(tenant, next);
    this.options.log?.info(`sealed the audit chain of tenant ${tenant}: seq ${firstSeq}…${at.head.seq} (${at.end} bytes) is now ${target}`);
    return next;
  }

  /**
   * Retention: removes the oldest sealed segments past `maxAgeMs` (by their newest record) or while the chain holds
   * more than `maxBytes`, never the newest sealed one (the active file's offsets start where it ends), never records
   * a sink has not delivered. First `<tenant>.anchor` is written: the newest removed record, a signed checkpoint, which
   * is all a verifier needs to check the rest. Then `audit.pruned` records what goes, naming the anchor, and the
   * segments are removed. Never fails the append: what is not removed now is removed at the next seal.
   */
  private async prune(tenant: string, at: Position): Promise<void> {
    this.pruned.add(tenant);
    try {
      await this.removeOld(tenant, at);
    } catch (err) {
      this.options.log?.error(`audit retention failed for tenant ${tenant}; it is tried again at the next seal`, { error: (err as Error).message });
    }
  }

  private async removeOld(tenant: string, at: Position): Promise<void> {
    const { maxAgeMs, maxBytes, delivered } = this.options.retention!;
    const sealed = await this.segments.sealed(tenant);
    const now = (this.options.now ?? Date.now)();
    let total = sealed.reduce((sum, s) => sum + s.size, 0) + at.end;
    const removed: typeof sealed = [];
    const why = new Set<string>();
    let anchor: AuditRecord | undefined;
    let deliveredSeq: number | undefined;
    for (const segment of sealed.slice(0, -1)) {
      const last = (await this.segments.lastOf(segment.path))?.record;
      if (!last) break;
      const old = maxAgeMs !== undefined && last.at <= now - maxAgeMs;
      const big = maxBytes !== undefined && total > maxBytes;
      if (!old && !big) break;
      if (last.type !== CHECKPOINT_TYPE) {
        this.options.log?.warn(`audit retention stops at ${segment.path}: it does not end in a signed checkpoint to anchor the rest`);
        break;
      }
      deliveredSeq ??= delivered ? await delivered(tenant) : Infinity;
      if (last.seq > deliveredSeq) {
        this.options.log?.warn(`audit retention held back for tenant ${tenant}: an audit sink has delivered up to seq ${deliveredSeq}, ${segment.path} ends at seq ${last.seq}`);
        break;
      }
      if (old) why.add('maxAge');
      if (big) why.add('maxBytes');
      removed.push(segment);
      anchor = last;
      total -= segment.size;
    }
    if (!anchor) return;
    const anchorPath = this.segments.anchorPath(tenant);
    writeFileAtomic(anchorPath, JSON.stringify(anchor) + '\n');
    if (this.fsync !== 'off') {
      await this.io.sync(anchorPath);
      await this.io.sync(this.dir);
    }
    const data = {
      segments: removed.length,
      bytes: removed.reduce((sum, s) => sum + s.size, 0),
      fromSeq: removed[0].firstSeq,
      throughSeq: anchor.seq,
      anchor: { seq: anchor.seq, hash: anchor.hash },
      reason: [...why].join(','),
    };
    this.options.log?.info(`audit retention removed ${removed.length} segments of tenant ${tenant} (seq ${data.fromSeq}…${anchor.seq}); the chain is anchored at seq ${anchor.seq}`);
    // Recorded before the removal: verify takes an anchor no kept `audit.pruned` names for records removed by hand.
    const position = this.positions.get(tenant) ?? at;
    await this.write(tenant, position, chainEvents(position.head, [{ tenant, at: now, type: 'audit.pruned', actor: 'audit-store', data }]));
    for (const segment of removed) await unlink(segment.path);
  }

  /**
   * Never fails an append: a head file left behind only checks less. Through the thread pool (`io.replace`): a
   * synchronous rename over the old head held up every call in flight, once per window.
   */
  private async writeHead(tenant: string, head: ChainHead): Promise<void> {
    try {
      await this.io.replace(this.headPath(tenant), JSON.stringify({ seq: head.seq, hash: head.hash }) + '\n');
    } catch (err) {
      this.options.log?.warn(`could not record the audit head of tenant ${tenant}`, { error: (err as Error).message });
    }
  }

  /** The newest record: the active file's, or right after a seal the sealed segment's before it. */
  private async lastRecord(path: string, end: number, base: number, parts: readonly ChainPart[]): Promise<Position> {
    for await (const { line, start } of linesBackward(path, end)) {
      const record = parseLine(path, line, undefined, start);
      // Re-encoded: a line that is not valid UTF-8 then never matches, and each append takes the full check.
      return { base, end, lastStart: start, head: { seq: record.seq, hash: record.hash }, last: Buffer.from(line + '\n') };
    }
    const sealed = parts.length > 1 ? parts.at(-2)! : undefined;
    const last = sealed ? await this.segments.lastOf(sealed.path) : undefined;
    if (sealed && last) return { base, end: 0, lastStart: sealed.start + last.start - base, head: { seq: last.record.seq, hash: last.record.hash }, last: Buffer.alloc(0) };
    return { base, end, lastStart: 0, head: GENESIS, last: Buffer.alloc(0) };
  }
}

/** One file's lines from byte `from` (a line's start) to its end as listed. */
function linesOf(part: ChainPart, from: number): AsyncIterable<string> {
  const end = part.end - part.start;
  if (end <= from) return (async function* () {})();
  return createInterface({ input: createReadStream(part.path, { encoding: 'utf8', start: from, end: end - 1 }), crlfDelay: Infinity });
}

/** Where the chain stands, in offsets across its segments (the index's). */
function coverOf(at: Position): ChainPosition {
  return { end: at.base + at.end, lastStart: at.base + at.lastStart, seq: at.head.seq, hash: at.head.hash };
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
