/**
 * Hands lines on in order, and a large one (`largeChars` or more) in an event-loop turn of its own: parsing it,
 * and all that its answer sets off, then runs apart from the turn that read it, and other connections' I/O
 * (`/healthz`, other upstreams' answers) is served in between. Small lines with nothing waiting go at once.
 */
export class LineInbox {
  private readonly waiting: string[] = [];
  private scheduled = false;

  constructor(
    private readonly deliver: (line: string) => void,
    private readonly largeChars = 1024 * 1024,
  ) {}

  push(line: string): void {
    if (this.waiting.length === 0 && line.length < this.largeChars) return this.deliver(line);
    this.waiting.push(line);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.drain);
  }

  private readonly drain = (): void => {
    this.scheduled = false;
    while (this.waiting.length > 0) {
      const line = this.waiting.shift()!;
      this.deliver(line);
      if (line.length >= this.largeChars && this.waiting.length > 0) return this.schedule();
    }
  };
}
