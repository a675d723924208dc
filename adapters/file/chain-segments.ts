import { closeSync, openSync, readSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import { GatewayError } from '../../src/errors.ts';
import { linesBackward, linesForward, readTextIfAny, tailOf } from './chain-file.ts';

/** A sealed segment: an immutable file of whole records, `start` bytes into the chain (all its segments end to end). */
export interface Segment {
  path: string;
  firstSeq: number;
  start: number;
  size: number;
}

/** One file of a chain as a reader sees it: sealed segments, then the active file, where appends go. */
export interface ChainPart {
  path: string;
  start: number;
  /** Whole records end here (a torn tail of the active file is not part of the chain). */
  end: number;
  firstSeq?: number;
}

/**
 * A chain's files in order: `<tenant>.segments/<firstSeq>-<start>.jsonl` (sealed, oldest first) then `<tenant>.jsonl`
 * (active). Offsets are logical: a byte's place in the chain's files end to end, so an offset stays valid when the
 * active file is sealed. The names carry each segment's first seq and logical start, so no manifest has to agree with
 * the files; retention keeps the newest sealed segment, so the active file's start is always its end.
 */
export class ChainSegments {
  /** Sealed segments never change: their sizes are read once. */
  private readonly sizes = new Map<string, number>();

  constructor(private readonly dir: string) {}

  activePath(tenant: string): string {
    return join(this.dir, `${encodeURIComponent(tenant)}.jsonl`);
  }

  segmentDir(tenant: string): string {
    return join(this.dir, `${encodeURIComponent(tenant)}.segments`);
  }

  segmentPath(tenant: string, firstSeq: number, start: number): string {
    return join(this.segmentDir(tenant), `${String(firstSeq).padStart(12, '0')}-${String(start).padStart(15, '0')}.jsonl`);
  }

  /** The sealed segments, oldest first. */
  async sealed(tenant: string): Promise<Segment[]> {
    const dir = this.segmentDir(tenant);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const segments: Segment[] = [];
    for (const name of names) {
      const match = /^(\d{12})-(\d{15})\.jsonl$/.exec(name);
      if (!match) continue;
      const path = join(dir, name);
      let size = this.sizes.get(path);
      if (size === undefined) {
        size = await stat(path).then((s) => s.size, () => undefined);
        if (size === undefined) continue;
        this.sizes.set(path, size);
      }
      segments.push({ path, firstSeq: Number(match[1]), start: Number(match[2]), size });
    }
    // Removed by retention: forgotten.
    if (this.sizes.size > segments.length * 2 + 16) for (const path of this.sizes.keys()) if (!segments.some((s) => s.path === path)) this.sizes.delete(path);
    return segments.sort((a, b) => a.start - b.start);
  }

  /**
   * Every part of the chain, oldest first, and where the active file starts. The segments are listed again after the
   * active file's end is read: a seal in between would otherwise pair the new active file with the old list.
   */
  async parts(tenant: string): Promise<{ parts: ChainPart[]; activeStart: number }> {
    let sealed = await this.sealed(tenant);
    let wholeEnd: number;
    for (;;) {
      ({ wholeEnd } = await tailOf(this.activePath(tenant)));
      const again = await this.sealed(tenant);
      if (again.at(-1)?.path === sealed.at(-1)?.path) break;
      sealed = again;
    }
    const newest = sealed.at(-1);
    const activeStart = newest ? newest.start + newest.size : 0;
    const parts: ChainPart[] = sealed.map((s) => ({ path: s.path, start: s.start, end: s.start + s.size, firstSeq: s.firstSeq }));
    parts.push({ path: this.activePath(tenant), start: activeStart, end: activeStart + wholeEnd });
    return { parts, activeStart };
  }

  /** The chain's logical extent: where its first kept record starts and its whole records end. */
  async extent(tenant: string): Promise<{ start: number; end: number }> {
    const { parts } = await this.parts(tenant);
    return { start: parts[0].start, end: parts.at(-1)!.end };
  }

  /** The lines of `[start, end)` in logical offsets, oldest first; bytes removed by retention are skipped. */
  async *linesForward(tenant: string, start: number, end: number): AsyncGenerator<{ line: string; start: number }> {
    const { parts } = await this.parts(tenant);
    for (const part of parts) {
      if (part.end <= start || part.start >= end) continue;
      const from = Math.max(start, part.start) - part.start;
      for await (const line of linesForward(part.path, from, Math.min(end, part.end) - part.start)) yield { line: line.line, start: line.start + part.start };
    }
  }

  /** Records by logical offset, read synchronously (a few hundred bytes each): files opened as needed. */
  async reader(tenant: string): Promise<SegmentReader> {
    return new SegmentReader((await this.parts(tenant)).parts);
  }

  /** The newest record of a sealed segment, and where its line starts in the file. */
  async lastOf(path: string): Promise<{ record: AuditRecord; start: number } | undefined> {
    const { wholeEnd } = await tailOf(path);
    for await (const { line, start } of linesBackward(path, wholeEnd)) return { record: parseRecord(path, line), start };
    return undefined;
  }

  /** The record retention anchored the chain on (`<tenant>.anchor`), when records were removed. */
  async anchor(tenant: string): Promise<AuditRecord | undefined> {
    const path = this.anchorPath(tenant);
    const text = await readTextIfAny(path);
    return text === undefined ? undefined : parseRecord(path, text.trim());
  }

  anchorPath(tenant: string): string {
    return join(this.dir, `${encodeURIComponent(tenant)}.anchor`);
  }
}

function parseRecord(path: string, line: string): AuditRecord {
  try {
    return JSON.parse(line) as AuditRecord;
  } catch (err) {
    throw new GatewayError('GH_ERR_DATA_CORRUPT', `${path} does not end in a valid JSON record`, { cause: err, data: { path } });
  }
}

/** Reads records at logical offsets across a chain's parts; `gone` for an offset before the first kept part. */
export class SegmentReader {
  private readonly fds = new Map<string, number>();

  constructor(readonly parts: readonly ChainPart[]) {}

  get start(): number {
    return this.parts[0]?.start ?? 0;
  }

  /** The record whose line starts at `offset`, undefined when no line starts there, `gone` when retention removed it. */
  recordAt(offset: number): AuditRecord | 'gone' | undefined {
    if (offset < this.start) return 'gone';
    const part = this.parts.find((p) => offset >= p.start && offset < p.end);
    if (!part) return undefined;
    let fd = this.fds.get(part.path);
    if (fd === undefined) this.fds.set(part.path, (fd = openSync(part.path, 'r')));
    return recordAt(fd, offset - part.start);
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

/** The record whose line starts at `offset` of a file, or undefined when no line starts there. */
export function recordAt(fd: number, offset: number): AuditRecord | undefined {
  // From the byte before, which must end the previous line: one read for both, in the common case.
  const from = offset > 0 ? offset - 1 : 0;
  let bytes = Buffer.alloc(0);
  for (let look = 2048; ; look *= 2) {
    const more = Buffer.alloc(look);
    const read = readSync(fd, more, 0, look, from + bytes.length);
    bytes = bytes.length === 0 ? more.subarray(0, read) : Buffer.concat([bytes, more.subarray(0, read)]);
    if (offset > 0 && bytes[0] !== 0x0a) return undefined;
    const end = bytes.indexOf(0x0a, offset - from);
    if (end >= 0) {
      try {
        return JSON.parse(bytes.toString('utf8', offset - from, end)) as AuditRecord;
      } catch {
        return undefined;
      }
    }
    if (read < look) return undefined;
  }
}
