import { StringDecoder } from 'node:string_decoder';

/** How much of a server's stderr is kept to say why it died: its last lines, within a few KiB. */
const MAX_LINES = 20;
const MAX_CHARS = 4096;

/**
 * The end of a child process's stderr, bounded, for the moment it dies: a server that exits at start usually says
 * why on stderr (a missing setting, a bad path), and that line is what the operator and the model need to see.
 * It keeps the last line even when the process wrote it without a newline.
 */
export class StderrTail {
  private readonly decoder = new StringDecoder('utf8');
  private text = '';

  push(chunk: Buffer): void {
    const decoded = this.decoder.write(chunk);
    this.text = (this.text + decoded.slice(-MAX_CHARS)).slice(-MAX_CHARS);
  }

  /** The last non-blank lines, oldest first (the first may be cut short by the size bound). */
  lines(): string[] {
    return this.text
      .split('\n')
      .map((line) => line.trimEnd())
      .filter((line) => line.trim() !== '')
      .slice(-MAX_LINES);
  }
}

/** A server process that died, said as a person would, with the last line it wrote on stderr. */
export class ProcessExit extends Error {
  constructor(
    code: number | null,
    signal: NodeJS.Signals | null,
    readonly stderr: string[],
  ) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const last = stderr.at(-1);
    super(last ? `${how}: ${last}` : `${how} (nothing on stderr)`);
    this.name = 'ProcessExit';
  }
}
