import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { JsonRpcMessage } from '../../src/protocol/jsonrpc.ts';
import { ReconnectingUpstream } from './reconnecting-upstream.ts';
import type { Logger } from '../../src/log.ts';
import { LineSplitter, type OversizedLine } from '../../src/protocol/line-splitter.ts';
import { readOversizedMessage } from '../../src/protocol/oversized-message.ts';
import { GatewayError } from '../../src/errors.ts';
import { LineBatcher } from '../../src/protocol/line-batcher.ts';
import { ProcessExit, StderrTail } from './stderr-tail.ts';
import { LineInbox } from '../../src/protocol/line-inbox.ts';
import { launchStdioServer, type LaunchedServer, type StdioCommand } from './stdio-launch.ts';

export interface StdioUpstreamOptions extends StdioCommand {
  /** `legacy`: always speak 2025 to it, never asking `server/discover` (default `auto`). */
  era?: 'auto' | 'legacy';
  /** The longest stdout line accepted from the server (bytes); a longer one fails the call it answers. */
  maxLineBytes?: number;
  /** The server process, already started (by `gatehouse wrap`, early): adopted by the first open, not started again. */
  launched?: LaunchedServer;
}

const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;

/** How long a dead server's stderr may take to end: its last words may still be in the pipe when it exits. */
const STDERR_DRAIN_MS = 250;

/**
 * An upstream MCP server run as a child process, spoken to in newline-delimited JSON-RPC (measured faster
 * than the SDK's stdio client on the hot path). Its stderr goes to our log (info). When it exits, its last stderr
 * lines are logged at warn, calls in flight fail with GH_ERR_UPSTREAM_UNAVAILABLE naming the last one, and it is
 * restarted with backoff.
 */
export class StdioUpstream extends ReconnectingUpstream {
  private child: ChildProcess | undefined;
  private output: LineBatcher | undefined;
  /** The stderr lines last logged at a death: a server that dies the same way on every restart is told once. */
  private lastWords = '';

  /** The process `gatehouse wrap` started before the gateway was built, until the first open adopts it. */
  private launched: LaunchedServer | undefined;

  constructor(
    name: string,
    private readonly options: StdioUpstreamOptions,
    log: Logger,
  ) {
    super(name, log, options.era);
    this.launched = options.launched;
  }

  protected open(): Promise<void> {
    const launched = this.launched ?? launchStdioServer(this.options);
    this.launched = undefined;
    const { child, started } = launched;
    return new Promise((resolve, reject) => {
      this.child = child;
      // One batcher per process: lines meant for a server that died never reach its successor.
      this.output = new LineBatcher((text) => {
        if (!child.stdin!.destroyed) child.stdin!.write(text);
      });
      const maxLineBytes = this.options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
      const lines = new LineSplitter(maxLineBytes, (line) => this.onOversizedLine(line, maxLineBytes));
      const inbox = new LineInbox((line) => this.onLine(line));
      child.stdout!.on('data', (chunk: Buffer) => {
        for (const line of lines.push(chunk)) inbox.push(line);
      });
      const stderr = new LineSplitter(64 * 1024);
      const tail = new StderrTail();
      const heard = (chunk: Buffer) => {
        tail.push(chunk);
        for (const line of stderr.push(chunk)) if (line.trim()) this.log.info(`[${this.name}] ${line}`);
      };
      launched.takeStderr().forEach(heard);
      child.stderr!.on('data', heard);
      // EPIPE: the server closed its stdin (or died). It can take no more requests, so end it; the exit
      // handler fails what is in flight and restarts it.
      child.stdin!.on('error', () => {
        if (child.exitCode === null) child.kill('SIGKILL');
      });
      const exited = (code: number | null, signal: NodeJS.Signals | null, settle?: (died: Error) => void) => {
        if (this.child !== child) return;
        this.child = undefined;
        void ended(child.stderr!, STDERR_DRAIN_MS).then(() => {
          const died = new ProcessExit(code, signal, tail.lines());
          this.tellLastWords(died);
          settle?.(died);
          this.connectionLost(died);
        });
      };
      // A server started early may have died before it was adopted: the open fails with its last words.
      if (child.exitCode !== null || child.signalCode !== null) return exited(child.exitCode, child.signalCode, reject);
      started.then(resolve, (failed: Error) => {
        if (this.child === child) this.child = undefined;
        reject(failed);
        this.connectionLost(failed);
      });
      child.once('exit', (code, signal) => exited(code, signal));
    });
  }

  protected async shut(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    child.stdin?.end();
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const killTimer = setTimeout(() => child.kill('SIGKILL'), 2_000);
    child.kill('SIGTERM');
    await exited;
    clearTimeout(killTimer);
  }

  protected transmit(message: JsonRpcMessage): void {
    const stdin = this.child?.stdin;
    if (!stdin || stdin.destroyed || !this.output) throw new Error('process is not running');
    this.output.push(JSON.stringify(message));
  }

  /** The pid of the running server process, for tests and diagnostics. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private tellLastWords(died: ProcessExit): void {
    const words = died.stderr.join('\n');
    if (!words || words === this.lastWords) return;
    this.lastWords = words;
    this.log.warn(`upstream ${this.name} ${died.message}`, { upstream: this.name, stderr: died.stderr });
  }

  /** A line over the limit was skipped: fail the call it answers (or, not knowing which, every call in flight). */
  private onOversizedLine(line: OversizedLine, maxLineBytes: number): void {
    const message = readOversizedMessage(line);
    const what = message.hasMethod ? 'request' : message.id === undefined ? 'message with no readable id' : `answer to request ${message.id}`;
    this.log.error(`[${this.name}] sent a ${what} of ${line.bytes} bytes, over the limit of ${maxLineBytes} bytes for one message from an upstream; it was dropped`, {
      upstream: this.name,
      bytes: line.bytes,
      limit: maxLineBytes,
    });
    const error = new GatewayError('GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE', `${this.name} answered with a message of ${line.bytes} bytes, over the limit of ${maxLineBytes} bytes`, {
      data: { upstream: this.name, bytes: line.bytes, limit: maxLineBytes },
    });
    this.rpc.tooLarge(message, error);
  }

  private onLine(line: string): void {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.log.warn(`[${this.name}] ignored a stdout line that is not JSON-RPC: ${line.slice(0, 200)}`);
      return;
    }
    this.rpc.receive(value);
  }
}

/** Resolves when the stream has ended, or after `ms` (a grandchild may hold the pipe open). */
function ended(stream: Readable, ms: number): Promise<void> {
  if (stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    stream.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
