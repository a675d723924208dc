import type { Dispatcher } from 'undici';
import { undici } from './undici.ts';
import { isGatewayError } from '../../src/errors.ts';
import type { Logger } from '../../src/log.ts';
import type { Notifier } from '../../src/ports.ts';
import type { ApprovalNotice } from '../../src/protocol/approval-notice.ts';

export interface WebhookOptions {
  url: string;
  headers?: Record<string, string>;
  /** Tries per notice, the first included (default 5). */
  attempts?: number;
  /** The wait before the first retry; it doubles on each retry, jittered ±50% (ms, default 1000). */
  baseDelayMs?: number;
  /** The longest wait between tries (ms, default 30000). */
  maxDelayMs?: number;
  /** How long one try may take, connecting to reading the answer (ms, default 5000). */
  timeoutMs?: number;
  /** Notices waiting to be sent; past it the oldest is dropped, with a warning (default 1000). */
  maxQueue?: number;
  random?: () => number;
  /** Waits between tries; rejects or resolves early when `signal` aborts. Default: a timer that does not keep the process alive. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Where connections come from: the SSRF guard's dispatcher in Gatehouse (undici's global one otherwise). */
  dispatcher?: Dispatcher;
}

/** Answers worth another try: the receiver was busy, or failed, rather than refusing the notice. */
const RETRYABLE = (status: number) => status === 408 || status === 429 || status >= 500;

/**
 * The approvals webhook: POSTs each notice as JSON (its `payload` when the format asked for one), one at a time and in order, from a bounded queue. A failed
 * try is retried with exponential backoff; a notice that fails every try is logged and dropped. Nothing here is
 * awaited by the approval path: `notify` only queues.
 */
export class WebhookNotifier implements Notifier {
  private readonly queue: ApprovalNotice[] = [];
  private readonly options: Required<Omit<WebhookOptions, 'dispatcher'>> & Pick<WebhookOptions, 'dispatcher'>;
  private readonly stopped = new AbortController();
  private draining = false;
  /** Where the logs say notices go: the origin only, since webhook URLs often carry a secret in the path. */
  private readonly target: string;

  constructor(
    options: WebhookOptions,
    private readonly log: Logger,
  ) {
    this.options = { headers: {}, attempts: 5, baseDelayMs: 1000, maxDelayMs: 30_000, timeoutMs: 5000, maxQueue: 1000, random: Math.random, sleep: unrefSleep, ...options };
    this.target = new URL(options.url).origin;
  }

  notify(notice: ApprovalNotice): void {
    if (this.stopped.signal.aborted) return;
    if (this.queue.length >= this.options.maxQueue) {
      const dropped = this.queue.shift()!;
      this.log.warn('approval webhook queue full; dropped the oldest notice', { to: this.target, event: dropped.event, approvalId: dropped.approval.id });
    }
    this.queue.push(notice);
    if (!this.draining) void this.drain();
  }

  async close(): Promise<void> {
    this.stopped.abort();
    this.queue.length = 0;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (let notice = this.queue.shift(); notice && !this.stopped.signal.aborted; notice = this.queue.shift()) await this.deliver(notice);
    } finally {
      this.draining = false;
    }
  }

  private async deliver(notice: ApprovalNotice): Promise<void> {
    const body = JSON.stringify(notice.payload ?? notice);
    let problem = '';
    for (let attempt = 1; attempt <= this.options.attempts; attempt++) {
      if (attempt > 1) await this.options.sleep(this.backoff(attempt - 1), this.stopped.signal).catch(() => undefined);
      if (this.stopped.signal.aborted) return;
      try {
        const response = await undici().request(this.options.url, {
          method: 'POST',
          headers: { ...this.options.headers, 'content-type': 'application/json' },
          body,
          headersTimeout: this.options.timeoutMs,
          bodyTimeout: this.options.timeoutMs,
          signal: AbortSignal.any([this.stopped.signal, AbortSignal.timeout(this.options.timeoutMs)]),
          ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}),
        });
        await response.body.dump();
        if (response.statusCode < 300) return;
        problem = `HTTP ${response.statusCode}`;
        if (!RETRYABLE(response.statusCode)) break;
      } catch (err) {
        if (this.stopped.signal.aborted) return;
        problem = (err as Error).message;
        // The SSRF guard's refusal stands until the config changes: trying again only repeats it.
        if (isGatewayError(err, 'GH_ERR_OUTBOUND_DENIED')) break;
      }
    }
    this.log.warn('approval webhook failed; the notice is dropped (the approval itself is unaffected)', { to: this.target, event: notice.event, approvalId: notice.approval.id, error: problem });
  }

  /** The wait before retry `n` (1-based): base·2^(n-1), capped, then jittered so that many gateways spread out. */
  private backoff(n: number): number {
    const capped = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (n - 1));
    return capped * (0.5 + this.options.random());
  }

}

function unrefSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done);
  });
}
