import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock, SessionChange, SessionFacts, SessionSlot } from '../../src/ports.ts';
import type { SessionRecord } from '../../src/protocol/session-record.ts';
import { MemorySessionFacts, type HeldRecord } from '../memory/session-facts.ts';
import { systemClock } from '../memory/clock.ts';
import { writeDataFile } from './atomic-file.ts';

export const SESSIONS_FILE = 'sessions.json';
/** How long after a change the file is written: calls in a burst share one write, off the call path. */
const FLUSH_AFTER_MS = 1_000;

/**
 * Embedded mode's session facts: in memory (one gateway process owns them), written whole to
 * `<dataDir>/sessions.json` at most once a second after a change and at close, so that a session's labels and
 * counts survive a restart. The file is read when a session is first needed, so a gateway whose policy reads no
 * session never reads it. A crash loses at most the last second of changes; a file that cannot be read is
 * ignored (the sessions start afresh: they are counts, not a record of what happened, which the audit trail is).
 */
export class FileSessionFacts implements SessionFacts {
  private readonly memory: MemorySessionFacts;
  private readonly file: string;
  private flushTimer: NodeJS.Timeout | undefined;
  private loaded = false;

  constructor(
    private readonly dataDir: string,
    clock: Pick<Clock, 'now'> = systemClock,
  ) {
    this.file = join(dataDir, SESSIONS_FILE);
    this.memory = new MemorySessionFacts(clock, () => this.scheduleFlush());
  }

  read(keys: readonly string[]): Promise<(SessionRecord | undefined)[]> {
    return this.loadedMemory().read(keys);
  }

  update<T>(slots: readonly SessionSlot[], change: (current: readonly (SessionRecord | undefined)[]) => SessionChange<T>): Promise<T> {
    return this.loadedMemory().update(slots, change);
  }

  async close(): Promise<void> {
    if (this.flushTimer) this.flush();
    await this.memory.close();
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), FLUSH_AFTER_MS);
    this.flushTimer.unref();
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    try {
      writeDataFile(this.dataDir, SESSIONS_FILE, JSON.stringify({ version: 1, sessions: this.memory.held() }));
    } catch {
      // An unwritable data dir costs the restart its sessions, not the calls: the next change tries again.
    }
  }

  private loadedMemory(): MemorySessionFacts {
    if (!this.loaded) {
      this.loaded = true;
      this.memory.restore(this.load());
    }
    return this.memory;
  }

  private load(): [string, HeldRecord][] {
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as { version?: unknown; sessions?: unknown };
      return parsed.version === 1 && Array.isArray(parsed.sessions) ? (parsed.sessions as [string, HeldRecord][]) : [];
    } catch {
      return [];
    }
  }
}
