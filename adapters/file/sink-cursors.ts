import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SinkCursors } from '../../src/ports.ts';
import { GatewayError } from '../../src/errors.ts';
import { writeFileAtomic } from './atomic-file.ts';

/**
 * The audit sinks' cursors in the data dir: `<dataDir>/audit-sinks/<sink>.json`, `{ "<tenant>": seq }`, rewritten
 * atomically after each delivered batch (one small file per sink: a batch costs one rename, not an fsync). A
 * crash loses at most the last write, which only sends that batch again.
 */
export class FileSinkCursors implements SinkCursors {
  private readonly dir: string;
  private readonly cursors = new Map<string, Record<string, number>>();

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'audit-sinks');
  }

  /** Read from the file each time: a forwarder asks only when it takes a sink (over), and the file is then the truth. */
  async get(sink: string, tenant: string): Promise<number> {
    const cursors = this.read(sink);
    this.cursors.set(sink, cursors);
    return cursors[tenant] ?? 0;
  }

  async set(sink: string, tenant: string, seq: number): Promise<void> {
    const cursors = this.of(sink);
    if ((cursors[tenant] ?? 0) >= seq) return;
    cursors[tenant] = seq;
    mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(this.path(sink), JSON.stringify(cursors));
  }

  async close(): Promise<void> {
    this.cursors.clear();
  }

  private of(sink: string): Record<string, number> {
    let cursors = this.cursors.get(sink);
    if (!cursors) this.cursors.set(sink, (cursors = this.read(sink)));
    return cursors;
  }

  private read(sink: string): Record<string, number> {
    const path = this.path(sink);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed === null || typeof parsed !== 'object' || Object.values(parsed).some((seq) => !Number.isInteger(seq))) throw new Error('expected { "<tenant>": seq }');
      return parsed as Record<string, number>;
    } catch (err) {
      throw new GatewayError('GH_ERR_DATA_CORRUPT', `audit sink cursor file ${path} is corrupt: ${(err as Error).message}`, { cause: err, data: { path } });
    }
  }

  private path(sink: string): string {
    return join(this.dir, `${sink}.json`);
  }
}
