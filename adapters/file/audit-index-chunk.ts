import type { AuditRecord } from '../../src/protocol/audit-record.ts';

/**
 * The text of a chain's index file (`<tenant>.idx`), one line per record and one mark per batch:
 *
 *     #gatehouse-audit-index 1                      the header
 *     <seq>\t<offset>\t[=<jobId>]\t[=<session>]     a record: where its line starts in the chain; the session only on
 *                                                   a `job.submitted` (both URI-encoded, so no tab or newline)
 *     #\t<end>\t<lastStart>\t<seq>\t<hash>          a mark: the index covers the chain up to byte `end`, whose last
 *                                                   record starts at `lastStart` with this seq and hash
 *
 * Only what a mark closes counts: lines after the last mark are a write cut short, and ignored.
 */
export const INDEX_HEADER = '#gatehouse-audit-index 1\n';

/** What a mark says the index covers. */
export interface IndexCover {
  end: number;
  lastStart: number;
  seq: number;
  hash: string;
}

export const NOTHING_COVERED: IndexCover = { end: 0, lastStart: 0, seq: 0, hash: '' };

const TAB = 0x09;
const NEWLINE = 0x0a;
const HASH = 0x23;

export function entryLine(record: AuditRecord, offset: number): string {
  const job = record.jobId === undefined ? '' : '=' + encodeURIComponent(record.jobId);
  const session = record.type === 'job.submitted' && typeof record.data.session === 'string' ? '=' + encodeURIComponent(record.data.session) : '';
  return `${record.seq}\t${offset}\t${job}\t${session}\n`;
}

export function markLine(cover: IndexCover): string {
  return `#\t${cover.end}\t${cover.lastStart}\t${cover.seq}\t${cover.hash}\n`;
}

/** The field an entry holds for a job id or a session, as bytes to compare. */
export function keyField(value: string): Buffer {
  return Buffer.from('=' + encodeURIComponent(value));
}

/** Where the last mark of `text` ends (0 when it has none), and what it says. */
export function lastMark(text: Buffer): { length: number; cover: IndexCover } | undefined {
  let end = text.length;
  // The last mark's line is followed only by a torn write, which holds no whole mark line.
  while (end > 0) {
    const start = text.lastIndexOf('\n#\t', end - 1);
    const lineStart = start < 0 ? (text[0] === HASH && text[1] === TAB ? 0 : -1) : start + 1;
    if (lineStart < 0) return undefined;
    const lineEnd = text.indexOf(NEWLINE, lineStart);
    if (lineEnd >= 0) {
      const cover = parseMark(text.toString('latin1', lineStart, lineEnd));
      if (cover) return { length: lineEnd + 1, cover };
    }
    if (start < 0) return undefined;
    end = start;
  }
  return undefined;
}

function parseMark(line: string): IndexCover | undefined {
  const [, end, lastStart, seq, hash] = line.split('\t');
  const cover = { end: Number(end), lastStart: Number(lastStart), seq: Number(seq), hash: hash ?? '' };
  return Number.isSafeInteger(cover.end) && Number.isSafeInteger(cover.lastStart) && Number.isSafeInteger(cover.seq) && cover.hash !== '' ? cover : undefined;
}

/** One record's entry, as read back. */
export interface IndexEntry {
  seq: number;
  offset: number;
  jobId?: string;
}

/**
 * Lookup tables over a run of whole index lines (up to and with a mark), built in one pass over the bytes: a hash
 * chain per job and per session, through the lines, so a lookup reads only its own entries. About 12 bytes per
 * line beside the text itself.
 */
export class IndexChunk {
  private lineStarts: Int32Array;
  private jobNext: Int32Array;
  private readonly jobHeads: Int32Array;
  private sessionNext: Int32Array;
  private readonly sessionHeads: Int32Array;
  readonly lines: number;

  constructor(private readonly text: Buffer) {
    // One byte loop rather than Buffer#indexOf: a million calls into C++ cost more than the bytes themselves. The
    // arrays are sized for lines of ~40 bytes (a record's), and grow if they are shorter.
    const expected = Math.max(16, Math.ceil(text.length / 40));
    this.lineStarts = new Int32Array(expected);
    this.jobNext = new Int32Array(expected);
    this.sessionNext = new Int32Array(expected);
    this.jobHeads = new Int32Array(tableSize(expected)).fill(-1);
    this.sessionHeads = new Int32Array(tableSize(expected >> 3)).fill(-1);
    const jobMask = this.jobHeads.length - 1;
    const sessionMask = this.sessionHeads.length - 1;
    let n = 0;
    let lineStart = 0;
    let tabs = 0;
    let jobHash = FNV_OFFSET;
    let sessionHash = FNV_OFFSET;
    let jobLength = 0;
    let sessionLength = 0;
    for (let i = 0; i < text.length; i++) {
      const byte = text[i];
      if (byte === NEWLINE) {
        if (text[lineStart] !== HASH) {
          if (n === this.lineStarts.length) this.grow();
          this.lineStarts[n] = lineStart;
          this.jobNext[n] = -1;
          this.sessionNext[n] = -1;
          if (jobLength > 0) {
            const slot = (jobHash >>> 0) & jobMask;
            this.jobNext[n] = this.jobHeads[slot];
            this.jobHeads[slot] = n;
          }
          if (sessionLength > 0) {
            const slot = (sessionHash >>> 0) & sessionMask;
            this.sessionNext[n] = this.sessionHeads[slot];
            this.sessionHeads[slot] = n;
          }
          n++;
        }
        lineStart = i + 1;
        tabs = jobLength = sessionLength = 0;
        jobHash = sessionHash = FNV_OFFSET;
      } else if (byte === TAB) {
        tabs++;
      } else if (tabs === 2) {
        jobHash = Math.imul(jobHash ^ byte, FNV_PRIME);
        jobLength++;
      } else if (tabs === 3) {
        sessionHash = Math.imul(sessionHash ^ byte, FNV_PRIME);
        sessionLength++;
      }
    }
    this.lines = n;
  }

  private grow(): void {
    const bigger = (from: Int32Array) => {
      const to = new Int32Array(from.length * 2);
      to.set(from);
      return to;
    };
    this.lineStarts = bigger(this.lineStarts);
    this.jobNext = bigger(this.jobNext);
    this.sessionNext = bigger(this.sessionNext);
  }

  /** The entries whose job field is `key` (see keyField), oldest first. */
  jobEntries(key: Buffer): IndexEntry[] {
    return this.walk(key, this.jobHeads, this.jobNext, 0);
  }

  /** The `job.submitted` entries whose session field is `key`, oldest first. */
  sessionEntries(key: Buffer): IndexEntry[] {
    return this.walk(key, this.sessionHeads, this.sessionNext, 1);
  }

  /** The newest entry whose seq is at most `seq`, if any. */
  floor(seq: number): IndexEntry | undefined {
    let lo = 0;
    let hi = this.lines - 1;
    let found: IndexEntry | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const entry = this.entry(mid);
      if (entry.seq <= seq) {
        found = entry;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  private walk(key: Buffer, heads: Int32Array, next: Int32Array, field: 0 | 1): IndexEntry[] {
    const found: IndexEntry[] = [];
    const hash = hashOf(key, 0, key.length);
    for (let n = heads[hash & (heads.length - 1)]; n >= 0; n = next[n]) {
      const start = this.lineStarts[n];
      const fields = fieldsOf(this.text, start, this.text.indexOf(NEWLINE, start));
      const from = field === 0 ? fields[0] : fields[1] + 1;
      const to = field === 0 ? fields[1] : fields[2];
      if (to - from === key.length && this.text.compare(key, 0, key.length, from, to) === 0) found.push(this.entry(n));
    }
    return found.reverse();
  }

  private entry(n: number): IndexEntry {
    const start = this.lineStarts[n];
    const end = this.text.indexOf(NEWLINE, start);
    const [seq, offset, job] = this.text.toString('latin1', start, end).split('\t');
    return { seq: Number(seq), offset: Number(offset), ...(job ? { jobId: decodeURIComponent(job.slice(1)) } : {}) };
  }
}

/** Where an entry's job field starts and ends, and where its session field ends (it starts after a tab). */
function fieldsOf(text: Buffer, start: number, end: number): [number, number, number] {
  const afterSeq = text.indexOf(TAB, start) + 1;
  const jobStart = text.indexOf(TAB, afterSeq) + 1;
  const jobEnd = text.indexOf(TAB, jobStart);
  return [jobStart, jobEnd, end];
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/** FNV-1a over bytes, as the constructor computes it field by field. */
function hashOf(bytes: Buffer, from: number, to: number): number {
  let h = FNV_OFFSET;
  for (let i = from; i < to; i++) h = Math.imul(h ^ bytes[i], FNV_PRIME);
  return h >>> 0;
}

function tableSize(entries: number): number {
  let size = 16;
  while (size < entries) size <<= 1;
  return size;
}
