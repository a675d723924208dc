import { open, readFile, type FileHandle } from 'node:fs/promises';

/** How far back a backward read looks at once; a first look at the tail of a file takes less. */
const CHUNK = 64 * 1024;
const FIRST_LOOK = 4 * 1024;
/** How much a forward read takes at once. */
const FORWARD_CHUNK = 1024 * 1024;
const NEWLINE = 0x0a;

/** A chain file's length and where its whole records end (after the last newline): the rest is a torn write. */
export interface FileTail {
  size: number;
  wholeEnd: number;
}

export async function tailOf(path: string): Promise<FileTail> {
  const file = await ChainFile.open(path);
  if (!file) return { size: 0, wholeEnd: 0 };
  try {
    return { size: file.size, wholeEnd: await file.wholeEnd() };
  } finally {
    await file.close();
  }
}

/** One open chain file, so a check of its tail costs one open, one fstat and the reads it needs. */
export class ChainFile {
  private constructor(
    private readonly handle: FileHandle,
    readonly size: number,
  ) {}

  /** Undefined when there is no such file yet. */
  static async open(path: string): Promise<ChainFile | undefined> {
    const handle = await openIfAny(path);
    if (!handle) return undefined;
    try {
      return new ChainFile(handle, (await handle.stat()).size);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  read(start: number, end: number): Promise<Buffer> {
    return readAt(this.handle, start, end - start);
  }

  /** Where the whole records end: after the last newline. */
  async wholeEnd(): Promise<number> {
    let pos = this.size;
    let look = FIRST_LOOK;
    while (pos > 0) {
      const n = Math.min(look, pos);
      const buf = await readAt(this.handle, pos - n, n);
      const i = buf.lastIndexOf(NEWLINE);
      if (i >= 0) return pos - n + i + 1;
      pos -= n;
      look = CHUNK;
    }
    return 0;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** The bytes of `[start, end)`. */
export async function readRange(path: string, start: number, end: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    return await readAt(handle, start, end - start);
  } finally {
    await handle.close();
  }
}

/**
 * The lines that end before `end` (which follows a newline), newest first, each with the offset it starts at.
 * A reader that stops early reads only the tail it needed.
 */
export async function* linesBackward(path: string, end: number): AsyncGenerator<{ line: string; start: number }> {
  if (end <= 1) return;
  const handle = await open(path, 'r');
  try {
    // The newline at end - 1 closes the newest line; `carry` is the start of a line the previous chunk cut.
    let pos = end - 1;
    let carry = Buffer.alloc(0);
    while (pos > 0) {
      const n = Math.min(CHUNK, pos);
      const joined = Buffer.concat([await readAt(handle, pos - n, n), carry]);
      const base = pos - n;
      let lineEnd = joined.length;
      for (let i = joined.lastIndexOf(NEWLINE, lineEnd - 1); i >= 0; i = i === 0 ? -1 : joined.lastIndexOf(NEWLINE, i - 1)) {
        if (lineEnd > i + 1) yield { line: joined.toString('utf8', i + 1, lineEnd), start: base + i + 1 };
        lineEnd = i;
      }
      carry = joined.subarray(0, lineEnd);
      pos = base;
    }
    if (carry.length > 0) yield { line: carry.toString('utf8'), start: 0 };
  } finally {
    await handle.close();
  }
}

/** The lines of `[start, end)` (both at line boundaries), oldest first, each with the offset it starts at. */
export async function* linesForward(path: string, start: number, end: number): AsyncGenerator<{ line: string; start: number }> {
  if (end <= start) return;
  const handle = await open(path, 'r');
  try {
    let carry: Buffer = Buffer.alloc(0);
    let base = start;
    for (let pos = start; pos < end; ) {
      const chunk = await readAt(handle, pos, Math.min(FORWARD_CHUNK, end - pos));
      if (chunk.length === 0) break;
      pos += chunk.length;
      const joined = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
      let lineStart = 0;
      for (let i = joined.indexOf(NEWLINE); i >= 0; i = joined.indexOf(NEWLINE, lineStart)) {
        if (i > lineStart) yield { line: joined.toString('utf8', lineStart, i), start: base + lineStart };
        lineStart = i + 1;
      }
      carry = joined.subarray(lineStart);
      base += lineStart;
    }
  } finally {
    await handle.close();
  }
}

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, position + done);
    if (bytesRead === 0) return buf.subarray(0, done);
    done += bytesRead;
  }
  return buf;
}

/** A small file's text, or undefined when there is no such file (a head or anchor not written yet). */
export async function readTextIfAny(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function openIfAny(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
