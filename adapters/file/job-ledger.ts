import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { RETRY_TAKEN_TTL_MS, type Clock, type DeadLetter, type JobLedger, type OpenJob, type RetryRequest } from '../../src/ports.ts';
import { GatewayError } from '../../src/errors.ts';
import { systemClock } from '../memory/clock.ts';
import { withFileLock } from './file-lock.ts';
import { writeFileAtomic } from './atomic-file.ts';

/** Job ids are ULIDs; anything else (a typo, a path) names no entry and never reaches the file system. */
const ID_PATTERN = /^[0-9A-Za-z_-]{1,64}$/;

/**
 * The job ledger of embedded mode. The jobs in flight and the locks live in this process, which is the only one
 * running them. The DLQ is one JSON file per dead job under `<dataDir>/dlq/` (mode 0600: it holds arguments),
 * written atomically, and every change to an entry holds that entry's lock file: `gatehouse dlq` in another
 * process, or several gateways on one data dir, never lose each other's changes or take one retry twice.
 */
export class FileJobLedger implements JobLedger {
  private readonly dir: string;
  private readonly jobs = new Map<string, OpenJob>();
  private readonly locks = new Map<string, { holder: string; expiresAt: number }>();
  /** DLQ writes under way: `close` lets them land, since nobody awaits a dead-lettering. */
  private readonly writing = new Set<Promise<unknown>>();

  constructor(
    dataDir: string,
    private readonly clock: Clock = systemClock,
  ) {
    this.dir = join(dataDir, 'dlq');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  async open(job: OpenJob): Promise<void> {
    this.jobs.set(job.jobId, job);
  }

  async finish(jobId: string): Promise<void> {
    this.jobs.delete(jobId);
  }

  async overdue(now: number, limit: number): Promise<OpenJob[]> {
    const due = [...this.jobs.values()].filter((job) => job.deadline <= now);
    return due.sort((a, b) => a.deadline - b.deadline || a.jobId.localeCompare(b.jobId)).slice(0, limit);
  }

  async deadLetter(entry: DeadLetter): Promise<void> {
    assertId(entry.jobId);
    await this.track(
      withFileLock(this.lockPath(entry.jobId), async () => {
        const retry = this.read(entry.jobId)?.retry;
        this.write({ ...entry, ...(retry ? { retry } : {}) });
      }),
    );
  }

  async listDead(): Promise<DeadLetter[]> {
    const entries: DeadLetter[] = [];
    for (const id of this.ids()) {
      const entry = this.read(id);
      if (entry) entries.push(entry);
    }
    return entries.sort((a, b) => a.at - b.at || a.jobId.localeCompare(b.jobId));
  }

  async getDead(jobId: string): Promise<DeadLetter | undefined> {
    return ID_PATTERN.test(jobId) ? this.read(jobId) : undefined;
  }

  async removeDead(jobId: string): Promise<boolean> {
    if (!ID_PATTERN.test(jobId)) return false;
    return withFileLock(this.lockPath(jobId), async () => {
      const path = this.filePath(jobId);
      try {
        rmSync(path);
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw err;
      }
    });
  }

  async requestRetry(jobId: string, by: string, at: number): Promise<DeadLetter | undefined> {
    if (!ID_PATTERN.test(jobId)) return undefined;
    return withFileLock(this.lockPath(jobId), async () => {
      const entry = this.read(jobId);
      if (!entry || entry.retry) return entry;
      const next = { ...entry, retry: { requestedAt: at, requestedBy: by } };
      this.write(next);
      return next;
    });
  }

  async takeRetry(holder: string, at: number): Promise<DeadLetter | undefined> {
    // Requested, and not taken, or taken so long ago that its taker is gone.
    const offered = (e: DeadLetter | undefined): e is DeadLetter & { retry: RetryRequest } =>
      e?.retry !== undefined && (e.retry.takenBy === undefined || (e.retry.takenAt ?? 0) + RETRY_TAKEN_TTL_MS <= at);
    // A corrupt file is reported when listed or shown; it must not keep the other retries from running.
    const waiting = this.ids()
      .map((id) => this.readOrSkip(id))
      .filter(offered);
    waiting.sort((a, b) => a.retry.requestedAt - b.retry.requestedAt || a.jobId.localeCompare(b.jobId));
    for (const candidate of waiting) {
      const taken = await withFileLock(this.lockPath(candidate.jobId), async () => {
        // Read again under the lock: another process may have taken or dropped it since the listing.
        const entry = this.read(candidate.jobId);
        if (!offered(entry)) return undefined;
        const next = { ...entry, retry: { ...entry.retry, takenBy: holder, takenAt: at } };
        this.write(next);
        return next;
      });
      if (taken) return taken;
    }
    return undefined;
  }

  async acquireLock(name: string, holder: string, ttlMs: number): Promise<boolean> {
    // Check and set with no await in between: that is what makes it atomic within the process.
    const now = this.clock.now();
    const lock = this.locks.get(name);
    if (lock && lock.expiresAt > now && lock.holder !== holder) return false;
    this.locks.set(name, { holder, expiresAt: now + ttlMs });
    return true;
  }

  async releaseLock(name: string, holder: string): Promise<void> {
    if (this.locks.get(name)?.holder === holder) this.locks.delete(name);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.writing]);
    this.jobs.clear();
    this.locks.clear();
  }

  private track<T>(write: Promise<T>): Promise<T> {
    this.writing.add(write);
    const done = () => void this.writing.delete(write);
    write.then(done, done);
    return write;
  }

  private ids(): string[] {
    return readdirSync(this.dir)
      .filter((name) => name.endsWith('.json'))
      .map((name) => name.slice(0, -5));
  }

  private filePath(jobId: string): string {
    return join(this.dir, `${jobId}.json`);
  }

  private lockPath(jobId: string): string {
    return join(this.dir, `${jobId}.lock`);
  }

  /** Synchronous, like the approval files: small files, where a thread-pool round trip costs more than the read. */
  private read(jobId: string): DeadLetter | undefined {
    const path = this.filePath(jobId);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const entry = JSON.parse(text) as DeadLetter;
      if (entry.jobId !== jobId || typeof entry.code !== 'string') throw new Error('not a dead letter');
      return entry;
    } catch (err) {
      throw new GatewayError('GH_ERR_DATA_CORRUPT', `dead letter file ${path} is corrupt: ${(err as Error).message}`, { cause: err, data: { path } });
    }
  }

  private readOrSkip(jobId: string): DeadLetter | undefined {
    try {
      return this.read(jobId);
    } catch {
      return undefined;
    }
  }

  private write(entry: DeadLetter): void {
    writeFileAtomic(this.filePath(entry.jobId), JSON.stringify(entry, null, 2) + '\n');
  }
}

function assertId(jobId: string): void {
  if (!ID_PATTERN.test(jobId)) throw new GatewayError('GH_ERR_INTERNAL', `invalid job id ${JSON.stringify(jobId)}`);
}
