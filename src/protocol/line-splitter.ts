import { StringDecoder } from 'node:string_decoder';

/** What is kept of a line over the limit: enough to tell whose message it was (`oversized-message.ts`). */
export interface OversizedLine {
  /** The line's first characters (about `KEPT_CHARS`). */
  readonly head: string;
  /** The line's last characters (about `KEPT_CHARS`), without the newline and a `\r` before it. */
  readonly tail: string;
  /** The whole line's length in bytes, its `\r` included. */
  readonly bytes: number;
}

const KEPT_CHARS = 256;
const NEWLINE = 10;

/**
 * Splits a byte stream into lines (`\n`, an optional `\r` before it dropped), in time linear in the bytes. Each
 * chunk is searched for a newline once and decoded once, as it arrives (the decoder carries a UTF-8 sequence cut
 * by a chunk boundary over to the next); the pieces of an unfinished line are joined once, when its newline
 * comes. So a large line costs one pass per chunk as it streams in, and one join at its end.
 *
 * `maxBytes` bounds a line in bytes. A longer line is not kept: its bytes are counted and dropped as they pass,
 * its head and tail kept, and `onOverflow` hears of it when it ends.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private parts: string[] = [];
  /** Bytes of the unfinished line so far. */
  private size = 0;
  /** The line being dropped for its size: its head, its last characters so far, and its length in bytes. */
  private skipping: { head: string; tail: string; bytes: number } | undefined;

  constructor(
    private readonly maxBytes: number,
    private readonly onOverflow: (line: OversizedLine) => void = () => undefined,
  ) {}

  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end >= 0; end = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, end);
      start = end + 1;
      // A newline ends any UTF-8 sequence: what the decoder still holds is invalid, and decoded as such.
      const text = this.decoder.write(piece) + this.decoder.end();
      if (!this.skipping && this.size + piece.length <= this.maxBytes) {
        lines.push(joinLine(this.parts, text));
        this.parts = [];
        this.size = 0;
        continue;
      }
      this.skip(text, piece.length);
      const { head, tail, bytes } = this.skipping!;
      this.skipping = undefined;
      this.onOverflow({ head, tail: tail.endsWith('\r') ? tail.slice(0, -1) : tail, bytes });
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      const text = this.decoder.write(rest);
      if (!this.skipping && this.size + rest.length <= this.maxBytes) {
        this.parts.push(text);
        this.size += rest.length;
      } else {
        this.skip(text, rest.length);
      }
    }
    return lines;
  }

  /** Counts `text` (`bytes` long) into the line being dropped, starting to drop the unfinished line if need be. */
  private skip(text: string, bytes: number): void {
    if (!this.skipping) {
      this.skipping = { head: firstChars(this.parts, KEPT_CHARS), tail: lastChars(this.parts, KEPT_CHARS), bytes: this.size };
      this.parts = [];
      this.size = 0;
    }
    const s = this.skipping;
    if (s.head.length < KEPT_CHARS) s.head += text.slice(0, KEPT_CHARS - s.head.length);
    s.bytes += bytes;
    s.tail = text.length >= KEPT_CHARS ? text.slice(-KEPT_CHARS) : (s.tail + text).slice(-KEPT_CHARS);
  }
}

/** The line's pieces joined into one flat string (no rope to flatten later), without a `\r` at its end. */
function joinLine(parts: string[], last: string): string {
  parts.push(last);
  let i = parts.length - 1;
  while (i > 0 && parts[i] === '') i--;
  if (parts[i].endsWith('\r')) parts[i] = parts[i].slice(0, -1);
  return parts.length === 1 ? parts[0] : parts.join('');
}

function firstChars(parts: readonly string[], n: number): string {
  let out = '';
  for (let i = 0; i < parts.length && out.length < n; i++) out += parts[i].slice(0, n - out.length);
  return out;
}

function lastChars(parts: readonly string[], n: number): string {
  let out = '';
  for (let i = parts.length - 1; i >= 0 && out.length < n; i--) out = parts[i].slice(-(n - out.length)) + out;
  return out;
}
