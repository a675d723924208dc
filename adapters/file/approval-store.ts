import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, watch, writeFileSync, type FSWatcher, type Stats } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { ApprovalQuery, ApprovalStore } from '../../src/ports.ts';
import { upgradeApprovalRecord, type ApprovalRecord, type ApprovalState, type StoredApprovalRecord } from '../../src/protocol/approval-record.ts';
import { sha256Hex } from '../../src/protocol/digest.ts';
import { GatewayError } from '../../src/errors.ts';
import { withFileLock } from './file-lock.ts';
import { writeFileAtomic } from './atomic-file.ts';

const ID_PATTERN = /^[0-9A-Za-z_-]{1,64}$/;
const POLL_MS = 1_000;
const INDEX_DIR = 'by-binding';
/** Written once every record of the data dir has its index marker (older versions wrote none). */
const INDEX_COMPLETE = '.complete';
/** `live/<id>`: an empty marker for each approval that can still change, which is all the poll reads. */
const LIVE_DIR = 'live';
/** A record file longer than this is rewritten as one line at its next update, not appended to. */
const REWRITE_AT_BYTES = 64 * 1024;

interface Entry {
  /** Which write of the file this is: a rename gives a new inode, and file times are only as fine as a jiffy. */
  version: string;
  record: ApprovalRecord;
  /** The file is in lines, whole ones, and short enough: the next update may append to it. */
  appendable: boolean;
}

/**
 * Approvals as one file each under `<dataDir>/approvals/`, a JSON record per line, the last whole line current.
 * A new record is written atomically (temp file + rename); an update appends its line, so a reader sees the old
 * record or the new one, never half of either (a line cut short by a crash is skipped). Appending, not replacing:
 * on ext4 a rename over an existing file forces the new file's data to disk before it returns (auto_da_alloc),
 * ~1 ms at p50 and ~10 ms at p99 on a busy disk, twice on an approval's round trip (its approval, then its
 * claim). A file whose last line is torn, written before lines (one indented record), or long is rewritten whole
 * (temp file + rename) instead. Every update holds the folder's lock file (`approvals/.lock`), so the gateway and a
 * `gatehouse approvals approve` in another process never lose each other's changes; a busy gateway keeps it between
 * updates (file-lock.ts: a lock file created and removed per update was two of an approval's dearest system calls),
 * and a process that waits for it asks for it. Changes made elsewhere are seen through fs.watch, with a slow poll
 * as a safety net.
 *
 * The approvals of one call are found through `by-binding/<sha256 of the binding key>/<id>`, an empty marker
 * written before the record (so a crash never leaves a record out of the index). Markers are never removed; a
 * marker whose record has another key is skipped. A data dir from before the index is indexed once, on the
 * first lookup, and `by-binding/.complete` then says so (delete the folder to have it rebuilt).
 *
 * The approvals that can still change (pending, approved, a result waiting for its retry) each have a marker in
 * `live/`, written before a record goes live and removed after it settles (by the poll, if a crash came between):
 * the safety-net poll reads only those, and so does a list of the pending or the approved ones (the gateway's
 * expiry sweep), so their cost follows the live approvals, not every approval ever made. A
 * data dir from before the markers gets them once, when the poll first starts (`live/.complete` then says so).
 */
/** Parsed records kept in memory: a long-running gateway sees approvals without end. */
const CACHED_RECORDS = 1_000;
/** The folder's lock is kept this long after an update for the next (an approval's round trip makes three or four). */
const KEEP_LOCK = { keepMs: 50 };

export class FileApprovalStore implements ApprovalStore {
  private readonly dir: string;
  /** One lock for the folder's records, kept between updates (file-lock.ts): see the class comment. */
  private readonly lockPath: string;
  private readonly indexDir: string;
  private readonly liveDir: string;
  private readonly cache = new Map<string, Entry>();
  private readonly listeners = new Set<(record: ApprovalRecord) => void>();
  /** What the watch delivered last of each approval still live when seen (its file's version): a settled one leaves it. */
  private readonly delivered = new Map<string, string>();
  private polled = 0;
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private indexed: Promise<void> | undefined;

  constructor(
    dataDir: string,
    /** Parsed records kept in memory (tests make it small). */
    private readonly cacheLimit = CACHED_RECORDS,
  ) {
    this.dir = join(dataDir, 'approvals');
    this.lockPath = join(this.dir, '.lock');
    this.indexDir = join(this.dir, INDEX_DIR);
    this.liveDir = join(this.dir, LIVE_DIR);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  async create(record: ApprovalRecord): Promise<void> {
    assertId(record.id);
    const upgraded = upgradeApprovalRecord(record);
    await withFileLock(this.lockPath, async () => {
      if (await this.read(record.id)) throw new GatewayError('GH_ERR_INTERNAL', `approval ${record.id} already exists`);
      this.index(upgraded);
      if (isLive(upgraded)) this.markLive(upgraded.id);
      await this.write(upgraded);
    }, KEEP_LOCK);
    this.emit(upgraded);
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    if (!ID_PATTERN.test(id)) return undefined;
    return this.read(id);
  }

  async list(query: ApprovalQuery = {}): Promise<ApprovalRecord[]> {
    // Pending and approved records are live, each with its marker: the gateway's expiry sweep asks for both every
    // 30 s, and read and parsed every approval ever made to answer, on the event loop, twice.
    const ids =
      query.bindingKey !== undefined ? await this.idsFor(query.bindingKey) : query.state !== undefined && LIVE_STATES.has(query.state) ? await this.liveIds() : await this.allIds();
    const records: ApprovalRecord[] = [];
    for (const id of ids) {
      const record = await this.read(id);
      if (!record) continue;
      if (query.state && record.state !== query.state) continue;
      if (query.tenant && record.tenant !== query.tenant) continue;
      if (query.bindingKey && record.bindingKey !== query.bindingKey) continue;
      records.push(record);
    }
    return records.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  async update(id: string, update: (current: ApprovalRecord) => ApprovalRecord): Promise<ApprovalRecord> {
    assertId(id);
    let changed = false;
    const next = await withFileLock(this.lockPath, async () => {
      this.cache.delete(id); // another process may have written since we cached it
      const entry = await this.readEntry(id);
      if (!entry) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `no approval ${id}`);
      const current = entry.record;
      const result = update(current);
      if (result === current) return current;
      changed = true;
      if (result.bindingKey !== current.bindingKey) this.index(result);
      // A live record's marker was written before it went live: only a record going live needs one.
      if (isLive(result) && !isLive(current)) this.markLive(id);
      await this.write(result, entry.appendable);
      if (!isLive(result)) this.unmarkLive(id);
      return result;
    }, KEEP_LOCK);
    if (changed) this.emit(next);
    return next;
  }

  watch(listener: (record: ApprovalRecord) => void): () => void {
    this.listeners.add(listener);
    this.startWatching();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopWatching();
    };
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.stopWatching();
    await this.indexed?.catch(() => undefined);
  }

  private filePath(id: string): string {
    return inDir(this.dir, `${id}.json`);
  }

  private bindingDir(bindingKey: string): string {
    return inDir(this.indexDir, sha256Hex(bindingKey));
  }

  private async allIds(): Promise<string[]> {
    return (await readdir(this.dir)).filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -5));
  }

  // The index and the live markers are tiny files in folders of a few entries, read and written on an approval's
  // path (created, approved, claimed): synchronous, like the record's own read and write, since each thread-pool
  // round trip cost more than the call, and queued behind the audit's fsync it set an approval's p99.

  private async idsFor(bindingKey: string): Promise<string[]> {
    await (this.indexed ??= this.indexAll());
    const dir = this.bindingDir(bindingKey);
    // A call seen for the first time (and a call with no grant) has no folder: asked first, as an error costs ten times more.
    if (!existsSync(dir)) return [];
    try {
      return readdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  private index(record: ApprovalRecord): void {
    this.writeMarker(this.bindingDir(record.bindingKey), record.id);
  }

  /** Written before the record goes live, so that a crash never leaves a live approval out of the poll. */
  private markLive(id: string): void {
    this.writeMarker(this.liveDir, id);
  }

  /** unlink(2) alone: rmSync would stat the marker twice first, on every approval's claim. */
  private unmarkLive(id: string): void {
    try {
      unlinkSync(inDir(this.liveDir, id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /**
   * An empty file named `name` in `dir`, the folder made when the write finds none: nothing remembered per folder,
   * since nearly every approval has a binding folder of its own (a set of those grew with every approval made).
   */
  private writeMarker(dir: string, name: string): void {
    try {
      writeFileSync(inDir(dir, name), '');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(inDir(dir, name), '');
    }
  }

  /** The approvals with a live marker; a data dir from before the markers is marked once first. */
  private async liveIds(): Promise<string[]> {
    const complete = join(this.liveDir, INDEX_COMPLETE);
    if (!(await stat(complete).then(() => true, () => false))) {
      for (const id of await this.allIds()) {
        const record = await this.read(id).catch(() => undefined); // a corrupt file is reported when it is read
        if (record && isLive(record)) this.markLive(id);
      }
      await mkdir(this.liveDir, { recursive: true, mode: 0o700 });
      await writeFile(complete, `${new Date().toISOString()}\n`);
    }
    return (await readdir(this.liveDir)).filter((name) => name !== INDEX_COMPLETE);
  }

  /** Indexes the records that have no marker yet (written before the index existed), once per data dir. */
  private async indexAll(): Promise<void> {
    const complete = join(this.indexDir, INDEX_COMPLETE);
    if (await stat(complete).then(() => true, () => false)) return;
    for (const id of await this.allIds()) {
      const record = await this.read(id).catch(() => undefined); // a corrupt file is reported when it is read
      if (record) this.index(record);
    }
    await mkdir(this.indexDir, { recursive: true, mode: 0o700 });
    await writeFile(complete, `${new Date().toISOString()}\n`);
  }

  private async read(id: string): Promise<ApprovalRecord | undefined> {
    return (await this.readEntry(id))?.record;
  }

  /** Synchronous, like the write: a small file's stat and read cost less than their thread-pool round trips. */
  private async readEntry(id: string): Promise<Entry | undefined> {
    const path = this.filePath(id);
    let version: string;
    try {
      // No error for a missing file: a new approval's id is looked up before it is written, on every call held.
      const info = statSync(path, { throwIfNoEntry: false });
      if (!info) return undefined;
      version = versionOf(info);
    } catch {
      return undefined;
    }
    const cached = this.cache.get(id);
    if (cached && cached.version === version) return cached;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
    let record: ApprovalRecord;
    try {
      const stored = JSON.parse(currentRecordText(text)) as StoredApprovalRecord;
      if (stored.id !== id || typeof stored.state !== 'string' || !Array.isArray(stored.history)) throw new Error('not an approval record');
      record = upgradeApprovalRecord(stored);
    } catch (err) {
      throw new GatewayError('GH_ERR_DATA_CORRUPT', `approval file ${path} is corrupt: ${(err as Error).message}`, {
        cause: err,
        data: { path },
      });
    }
    const entry = { version, record, appendable: appendable(text) };
    this.remember(id, entry);
    return entry;
  }

  /** Appends the record's line to its file when `append` (see the class comment), else writes the file whole. */
  private async write(record: ApprovalRecord, append = false): Promise<void> {
    const path = this.filePath(record.id);
    const line = JSON.stringify(record) + '\n';
    if (append) appendFileSync(path, line, { mode: 0o600 });
    else writeFileAtomic(path, line);
    const info = statSync(path);
    this.remember(record.id, { version: versionOf(info), record, appendable: info.size <= REWRITE_AT_BYTES });
  }

  /** Caches a parsed record; past the limit the oldest goes (each is checked against its file anyway). */
  private remember(id: string, entry: Entry): void {
    this.cache.delete(id);
    if (this.cache.size >= this.cacheLimit) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(id, entry);
  }

  /** How many parsed records are cached (tests: the cache stays bounded however many approvals a gateway sees). */
  get cachedRecords(): number {
    return this.cache.size;
  }

  private emit(record: ApprovalRecord): void {
    for (const listener of this.listeners) listener(record);
  }

  /** How many approvals the watch keeps a version of: the live ones it has delivered, never those that settled (tests). */
  get watchedApprovals(): number {
    return this.delivered.size;
  }

  /** How many approvals the poll's last tick read (tests: the live ones, however many settled ones there are). */
  get polledApprovals(): number {
    return this.polled;
  }

  private startWatching(): void {
    if (this.watcher || this.poller) return;
    const seen = this.delivered;
    const check = async (id: string) => {
      const entry = await this.readEntry(id).catch(() => undefined);
      if (!entry) return;
      if (seen.get(id) === entry.version) return;
      seen.set(id, entry.version);
      this.emit(entry.record);
      if (!isLive(entry.record)) seen.delete(id);
      return entry;
    };
    try {
      this.watcher = watch(this.dir, (_event, name) => {
        if (name && name.endsWith('.json')) void check(name.slice(0, -5));
      });
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      // No inotify: the poll below still delivers changes.
    }
    // Only the live approvals, and those delivered live (to deliver how they settled, if another process did it):
    // never a stat for every approval ever made, on the event loop, every second.
    this.poller = setInterval(async () => {
      const live = new Set(await this.liveIds().catch((): string[] => []));
      // One corrupt file must not blind the poll to the others.
      const ids = new Set([...live, ...seen.keys()]);
      this.polled = ids.size;
      for (const id of ids) {
        const entry = await check(id).catch(() => undefined);
        // Settled, and its marker left behind by a crash between the record and the marker's removal: removed now.
        if (entry && !isLive(entry.record) && live.has(id)) {
          try {
            this.unmarkLive(id);
          } catch {
            // left for the next tick
          }
        }
      }
    }, POLL_MS);
    this.poller.unref();
  }

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
  }
}

/**
 * The current record of a file's text: the last whole line; the whole text for a file written before lines (one
 * indented record) or with no whole line (which then fails to parse: corrupt).
 */
function currentRecordText(text: string): string {
  if (text.startsWith('{\n')) return text;
  const end = text.lastIndexOf('\n');
  if (end < 0) return text;
  return text.slice(text.lastIndexOf('\n', end - 1) + 1, end);
}

/** Whether an update may append to a file with this text: in lines, its last one whole, and not long. */
function appendable(text: string): boolean {
  return !text.startsWith('{\n') && text.endsWith('\n') && text.length <= REWRITE_AT_BYTES;
}

/**
 * A file in one of the store's folders. The names are approval ids (ID_PATTERN), digests or names read from the
 * folder, so there is nothing for path.join to normalize, and its normalizing, on every read and write of an
 * approval, made a tenth of the store's garbage.
 */
function inDir(dir: string, name: string): string {
  return dir + sep + name;
}

function versionOf(info: Stats): string {
  return `${info.ino}:${info.mtimeMs}:${info.size}`;
}

/** The states in which a record is always live (see `isLive`), so always has its marker. */
const LIVE_STATES: ReadonlySet<ApprovalState> = new Set(['pending', 'approved']);

/** Whether an approval can still change: settled ones change no more, so the poll stops looking at them. */
function isLive(record: ApprovalRecord): boolean {
  return record.state === 'pending' || record.state === 'approved' || (record.state === 'consumed' && record.execution !== undefined && record.execution.takenBy === undefined);
}

function assertId(id: string): void {
  if (!ID_PATTERN.test(id)) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `invalid approval id ${JSON.stringify(id)}`);
}
