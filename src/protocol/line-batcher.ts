const LARGE_LINE_CHARS = 64 * 1024;

/**
 * Writes lines with as few writes as possible without delaying any: the first line of an event-loop turn
 * goes out at once, and the lines that follow it in the same turn go out together in one write when the turn
 * ends. Under load this turns many small pipe writes (each a system call that wakes the reader) into few.
 */
export class LineBatcher {
  private pending = '';
  private turnOpen = false;

  constructor(private readonly write: (text: string) => void) {}

  push(line: string): void {
    if (this.turnOpen) {
      this.pending += line + '\n';
      return;
    }
    this.turnOpen = true;
    setImmediate(this.endTurn);
    if (line.length < LARGE_LINE_CHARS) return this.write(line + '\n');
    // Written apart from its newline: joined, a large line would be copied once more before it is encoded.
    this.write(line);
    this.write('\n');
  }

  private readonly endTurn = (): void => {
    this.turnOpen = false;
    const text = this.pending;
    this.pending = '';
    if (text) this.write(text);
  };
}
