import { StringDecoder } from 'node:string_decoder';

/**
 * Splits a byte stream into lines. A line longer than `maxBytes` is dropped whole (reported by `onOverflow`)
 * rather than buffered without bound.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  private overflowing = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onOverflow: () => void = () => undefined,
  ) {}

  push(chunk: Buffer): string[] {
    const text = this.partial + this.decoder.write(chunk);
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    if (this.overflowing) {
      if (lines.length === 0) {
        this.partial = '';
        return [];
      }
      lines.shift(); // the tail of the oversized line
      this.overflowing = false;
    }
    if (this.partial.length > this.maxBytes) {
      this.partial = '';
      this.overflowing = true;
      this.onOverflow();
    }
    return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  }
}
