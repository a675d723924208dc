import { mkdirSync, watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ApprovalQuery, ApprovalStore } from '../../src/ports.ts';
import type { ApprovalRecord } from '../../src/approvals/approval.ts';
import { GatewayError } from '../../src/errors.ts';
import { withFileLock } from './file-lock.ts';
import { writeFileAtomic } from './atomic-file.ts';

const ID_PATTERN = /^[0-9A-Za-z_-]{1,64}$/;
const POLL_MS = 1_000;

/**
 * Approvals as one JSON file each under `<dataDir>/approvals/`. Every write is atomic (temp file + rename) and
 * every update holds a per-approval lock file, so the gateway and a `gatehouse approvals approve` in another
 * process never lose each other's changes. Changes made elsewhere are seen through fs.watch, with a slow poll
 * as a safety net.
 */
export class FileApprovalStore implements ApprovalStore {
  private readonly dir: string;
  private readonly cache = new Map<string, { mtimeMs: number; record: ApprovalRecord }>();
  private readonly listeners = new Set<(record: ApprovalRecord) => void>();
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'approvals');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  async create(record: ApprovalRecord): Promise<void> {
    assertId(record.id);
    await withFileLock(this.lockPath(record.id), async () => {
      if (await this.read(record.id)) throw new GatewayError('GH_ERR_INTERNAL', `approval ${record.id} already exists`);
      await this.write(record);
    });
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    if (!ID_PATTERN.test(id)) return undefined;
    return this.read(id);
  }

  async list(query: ApprovalQuery = {}): Promise<ApprovalRecord[]> {
    const names = await readdir(this.dir);
    const records: ApprovalRecord[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const record = await this.read(name.slice(0, -5));
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
    const next = await withFileLock(this.lockPath(id), async () => {
      this.cache.delete(id); // another process may have written since we cached it
      const current = await this.read(id);
      if (!current) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `no approval ${id}`);
      const result = update(current);
      await this.write(result);
      return result;
    });
    this.emit(next);
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
  }

  private filePath(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  private lockPath(id: string): string {
    return join(this.dir, `${id}.lock`);
  }

  private async read(id: string): Promise<ApprovalRecord | undefined> {
    const path = this.filePath(id);
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(path)).mtimeMs;
    } catch {
      return undefined;
    }
    const cached = this.cache.get(id);
    if (cached && cached.mtimeMs === mtimeMs) return cached.record;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      return undefined;
    }
    let record: ApprovalRecord;
    try {
      record = JSON.parse(text) as ApprovalRecord;
      if (record.id !== id || typeof record.state !== 'string') throw new Error('not an approval record');
    } catch (err) {
      throw new GatewayError('GH_ERR_DATA_CORRUPT', `approval file ${path} is corrupt: ${(err as Error).message}`, {
        cause: err,
        data: { path },
      });
    }
    this.cache.set(id, { mtimeMs, record });
    return record;
  }

  private async write(record: ApprovalRecord): Promise<void> {
    await writeFileAtomic(this.filePath(record.id), JSON.stringify(record, null, 2) + '\n');
  }

  private emit(record: ApprovalRecord): void {
    for (const listener of this.listeners) listener(record);
  }

  private startWatching(): void {
    if (this.watcher || this.poller) return;
    const seen = new Map<string, string>();
    const check = async (id: string) => {
      const record = await this.read(id).catch(() => undefined);
      if (!record) return;
      const version = `${record.state}:${record.history.length}`;
      if (seen.get(id) === version) return;
      seen.set(id, version);
      this.emit(record);
      // Settled approvals change no more: stop looking at them.
      if (record.state !== 'pending' && record.state !== 'approved') seen.delete(id);
    };
    try {
      this.watcher = watch(this.dir, (_event, name) => {
        if (name && name.endsWith('.json')) void check(name.slice(0, -5));
      });
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      // No inotify: the poll below still delivers changes.
    }
    this.poller = setInterval(async () => {
      const pending = await this.list({ state: 'pending' }).catch(() => []);
      const names = new Set(pending.map((r) => r.id));
      for (const id of seen.keys()) if (!names.has(id)) void check(id);
      for (const record of pending) void check(record.id);
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

function assertId(id: string): void {
  if (!ID_PATTERN.test(id)) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `invalid approval id ${JSON.stringify(id)}`);
}
