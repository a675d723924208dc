import type { Agent, Dispatcher } from 'undici';
import { undici } from '../http/undici.ts';
import type { Logger } from '../../src/log.ts';
import type { UpstreamCredential } from '../../src/ports.ts';
import type { JsonRpcId, JsonRpcMessage } from '../../src/protocol/jsonrpc.ts';
import { RpcErrorCode } from '../../src/protocol/jsonrpc.ts';
import { ReconnectingUpstream } from './reconnecting-upstream.ts';
import { readSseEvents } from './sse-reader.ts';
import { GatewayError, isGatewayError } from '../../src/errors.ts';
import type { Era } from '../../src/protocol/call.ts';
import { modernHeaders } from './modern-headers.ts';
import { post, type PostAnswer } from './upstream-post.ts';
import type { Readable } from 'node:stream';

export interface HttpUpstreamOptions {
  /** `legacy`: always speak 2025 to it, never asking `server/discover` (default `auto`). */
  era?: 'auto' | 'legacy';
  url: string;
  /** Sent on every request: the upstream's own credentials, never a client's token. */
  headers: Record<string, string>;
  /** The largest message read from the upstream (a JSON body, an SSE event's data); a larger one fails its request. */
  maxMessageBytes?: number;
  /** Gatehouse's own OAuth token for this upstream (`upstreams.<name>.oauth`), as the Authorization header. */
  credential?: UpstreamCredential;
  /** `oauth.grant: token-exchange`: each call brings the caller's exchanged token (its request's `credential`). */
  actsForCaller?: boolean;
  /** The SSRF guard: checked before each connect (the upstream is down with its refusal), and every connection goes to the address it checked. */
  guard?: ConnectionGuard;
}

/** What HttpUpstream needs of the SSRF guard (adapters/http/outbound-guard.ts), which it does not import. */
export interface ConnectionGuard {
  /** Rejects (GH_ERR_OUTBOUND_DENIED) when the URL's host may not be reached. */
  check(url: string): Promise<unknown>;
  /** An Agent that connects only to addresses it checked. */
  dispatcher(options: Agent.Options): Agent;
}

export type { UpstreamCredential } from '../../src/ports.ts';

const STREAM_RETRY_MS = 1_000;
const CONTENT_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/**
 * An upstream MCP server over Streamable HTTP (2025-11-25, sessionful), via undici with keep-alive. Answers
 * arrive as JSON or as an SSE stream; anything on a request's stream (progress, server→client requests) is
 * attributed to that request. A stream the server closes before the answer is resumed from its last event id
 * (SEP-1699). A standalone GET stream carries the server's own notifications when offered.
 */
export class HttpUpstream extends ReconnectingUpstream {
  private readonly agent: Agent;
  private sessionId: string | undefined;
  private protocolVersion: string | undefined;
  private listenStream: AbortController | undefined;
  private listenLastEventId: string | undefined;
  /** The POST headers of the current session and revision, when no credential varies them. */
  private plain: { key: string; headers: Record<string, string> } | undefined;
  private readonly origin: string;
  private readonly path: string;

  constructor(
    name: string,
    private readonly options: HttpUpstreamOptions,
    log: Logger,
  ) {
    super(name, log, options.era);
    const pool = { keepAliveTimeout: 30_000, connections: 128, pipelining: 1 };
    this.agent = options.guard ? options.guard.dispatcher(pool) : new (undici().Agent)(pool);
    const url = new URL(options.url);
    this.origin = url.origin;
    this.path = `${url.pathname}${url.search}`;
  }

  get url(): string {
    return this.options.url;
  }

  get actsForCaller(): boolean {
    return this.options.actsForCaller === true;
  }

  protected async open(): Promise<void> {
    this.sessionId = undefined;
    this.protocolVersion = undefined;
    this.listenLastEventId = undefined;
    // Refused here, the upstream is down with the guard's reason (and retried: an allowed address may come back).
    await this.options.guard?.check(this.options.url);
  }

  protected override afterHandshake(protocolVersion: string, era: Era): void {
    this.protocolVersion = protocolVersion;
    // A 2026-07-28 server keeps no session and has no standalone stream to open.
    if (era === 'legacy') void this.openListenStream();
  }

  protected async shut(): Promise<void> {
    this.listenStream?.abort();
    this.listenStream = undefined;
    const sessionId = this.sessionId;
    if (!sessionId) return;
    this.sessionId = undefined;
    // The DELETE names the session it ends.
    await this.headers(sessionId)
      .then((headers) => undici().request(this.options.url, { method: 'DELETE', headers, dispatcher: this.agent }))
      .then((r) => r.body.dump())
      .catch(() => undefined);
  }

  override async close(): Promise<void> {
    await super.close();
    await this.agent.close().catch(() => undefined);
  }

  protected async transmit(message: JsonRpcMessage, relatedRequestId?: JsonRpcId, credential?: UpstreamCredential): Promise<void> {
    const requestId = 'id' in message && 'method' in message ? message.id : undefined;
    // A 2026-07-28 request names its revision, method and target in headers too (the server checks they match the body).
    const modern = modernHeaders(message);
    const trace = traceHeaders(message);
    const base = credential || this.options.credential ? { ...(await this.headers(this.sessionId, credential)), ...CONTENT_HEADERS } : this.plainHeaders();
    const headers = modern || trace ? { ...base, ...modern, ...trace } : base;
    const exchange = post(this.agent, { origin: this.origin, path: this.path, headers, body: JSON.stringify(message) }, this.maxMessageBytes);
    // A request that times out or is cancelled drops its HTTP exchange too, so a hung upstream cannot pin
    // connections of the pool.
    let dropped = false;
    const drop = () => {
      dropped = true;
      exchange.abort(new Error('the request ended unanswered'));
    };
    // Ended already (it timed out while a credential was fetched): the POST is dropped at once.
    if (requestId !== undefined && !this.rpc.onEnd(requestId, (answered) => answered || drop())) drop();
    try {
      await this.answered(await exchange.answer, message, requestId, relatedRequestId, credential);
    } catch (err) {
      if (dropped) return;
      // Only a refused connection means the upstream is down; any other failure fails this request alone.
      if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED' && this.state === 'ready') this.connectionLost(err as Error);
      throw err;
    }
  }

  /** The headers of a POST with Gatehouse's own static headers (no credential): made once per session, not per call. */
  private plainHeaders(): Record<string, string> {
    const key = `${this.sessionId ?? ''} ${this.protocolVersion ?? ''}`;
    if (this.plain?.key !== key) {
      const headers: Record<string, string> = { ...this.options.headers, ...CONTENT_HEADERS };
      if (this.sessionId) headers['mcp-session-id'] = this.sessionId;
      if (this.protocolVersion) headers['mcp-protocol-version'] = this.protocolVersion;
      this.plain = { key, headers };
    }
    return this.plain.headers;
  }

  private async answered(response: PostAnswer, message: JsonRpcMessage, requestId: JsonRpcId | undefined, relatedRequestId: JsonRpcId | undefined, credential: UpstreamCredential | undefined): Promise<void> {
    const session = response.headers['mcp-session-id'];
    if (typeof session === 'string' && 'method' in message && message.method === 'initialize') this.sessionId = session;
    const type = response.headers['content-type'] ?? '';
    if (response.statusCode === 404 && this.sessionId) {
      response.stream?.destroy();
      this.connectionLost(new Error('the upstream forgot our session (404)'));
      return;
    }
    // Redirects are never followed (undici's request() follows none without a redirect interceptor, and we add
    // none): a 3xx fails the request like an error status, so an upstream cannot bounce a call, and its
    // credentials, to a host that egress rules never checked.
    if (response.statusCode >= 300) {
      if (response.statusCode === 401) (credential ?? this.options.credential)?.rejected();
      const body = typeof response.text === 'string' ? response.text : '';
      // An upstream refusing our credential may echo it back in the body: that text never reaches a client or a record.
      const text = response.statusCode === 401 || response.statusCode === 403 ? '' : body;
      const location = response.statusCode < 400 && typeof response.headers.location === 'string' ? ` (a redirect to ${response.headers.location}, not followed)` : '';
      // A 2026-07-28 server answers some JSON-RPC errors with a 4xx status (-32601 with 404, -32602 with 400): its own error.
      const own = requestId !== undefined && response.statusCode >= 400 && response.statusCode < 500 ? rpcErrorFor(text, requestId) : undefined;
      if (own) {
        this.rpc.receive(own);
        return;
      }
      if (requestId !== undefined) {
        this.rpc.receive({
          jsonrpc: '2.0',
          id: requestId,
          // Not the upstream's own JSON-RPC error: coded as Gatehouse's, so a client can tell the two apart.
          error: { code: RpcErrorCode.SERVER_ERROR, message: `HTTP ${response.statusCode}${location}${text ? `: ${text.slice(0, 200)}` : ''}`, data: { code: 'GH_ERR_UPSTREAM_ERROR', httpStatus: response.statusCode } },
        });
      }
      return;
    }
    if (response.stream) {
      await this.readResponseStream(response.stream, requestId, relatedRequestId, credential);
    } else if (type.includes('application/json') && response.text !== undefined) {
      if (typeof response.text === 'string') this.receiveText(response.text, requestId ?? relatedRequestId);
      else this.tooLarge(requestId, response.text.bytes);
    }
  }

  /**
   * Reads the SSE stream answering a POST. If it ends before the answer to its request, the request resumes
   * (SEP-1699): after the server's `retry:` delay, a GET with `Last-Event-ID` replays what was missed and carries
   * the rest. A stream that ends with no event id to resume from fails its request now, not at its timeout.
   */
  private async readResponseStream(body: Readable | Dispatcher.ResponseData['body'], requestId: JsonRpcId | undefined, relatedRequestId: JsonRpcId | undefined, credential: UpstreamCredential | undefined): Promise<void> {
    let stream = body;
    let lastEventId: string | undefined;
    let retryMs = STREAM_RETRY_MS;
    // A request that times out or is cancelled stops reading its stream (an answered one lets it end cleanly).
    if (requestId !== undefined) {
      this.rpc.onEnd(requestId, (answered) => {
        if (!answered) stream.destroy();
      });
    }
    for (;;) {
      try {
        for await (const event of readSseEvents(stream, this.maxMessageBytes)) {
          if (event.id !== undefined) lastEventId = event.id;
          if (event.retry !== undefined) retryMs = event.retry;
          if (event.data) this.receiveText(event.data, requestId ?? relatedRequestId);
        }
      } catch (err) {
        // Too large: resuming would only read it again. Otherwise the connection dropped or the stream was
        // destroyed, and whether to resume is decided below.
        if (isGatewayError(err) && err.code === 'GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE') {
          stream.destroy();
          this.tooLarge(requestId, Number(err.data?.bytes));
          return;
        }
      }
      if (requestId === undefined || !this.rpc.isPending(requestId) || this.state !== 'ready') return;
      if (lastEventId === undefined) {
        this.failRequest(requestId, 'the upstream ended the response stream without answering');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, retryMs));
      if (!this.rpc.isPending(requestId) || this.state !== 'ready') return;
      let resumed;
      try {
        resumed = await undici().request(this.options.url, {
          method: 'GET',
          headers: { ...(await this.headers(this.sessionId, credential)), accept: 'text/event-stream', 'last-event-id': lastEventId },
          dispatcher: this.agent,
        });
      } catch (err) {
        this.failRequest(requestId, `could not resume the response stream: ${(err as Error).message}`);
        return;
      }
      if (resumed.statusCode !== 200 || !String(resumed.headers['content-type'] ?? '').includes('text/event-stream')) {
        await resumed.body.dump().catch(() => undefined);
        this.failRequest(requestId, `could not resume the response stream: HTTP ${resumed.statusCode}`);
        return;
      }
      if (!this.rpc.isPending(requestId)) {
        resumed.body.destroy();
        return;
      }
      stream = resumed.body;
    }
  }

  private get maxMessageBytes(): number {
    return this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  /** A message over the limit was dropped: its request fails at once with the code, and the log says so. */
  private tooLarge(requestId: JsonRpcId | undefined, bytes: number): void {
    const limit = this.maxMessageBytes;
    this.log.error(`[${this.name}] sent a message of at least ${bytes} bytes, over the limit of ${limit} bytes for one message from an upstream; it was dropped`, { upstream: this.name, bytes, limit });
    if (requestId === undefined) return;
    const error = new GatewayError('GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE', `${this.name} answered with a message of at least ${bytes} bytes, over the limit of ${limit} bytes`, { data: { upstream: this.name, bytes, limit } });
    this.rpc.tooLarge({ hasMethod: false, id: requestId }, error);
  }

  private failRequest(requestId: JsonRpcId, message: string): void {
    this.rpc.receive({ jsonrpc: '2.0', id: requestId, error: { code: RpcErrorCode.SERVER_ERROR, message } });
  }

  private receiveText(text: string, relatedRequestId: JsonRpcId | undefined): void {
    if (!text.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.log.warn(`[${this.name}] ignored a message that is not JSON`);
      return;
    }
    for (const item of Array.isArray(value) ? value : [value]) this.rpc.receive(item, relatedRequestId);
  }

  /** `credential`: a call's own, on its caller's behalf (token exchange), in place of Gatehouse's. */
  private async headers(sessionId = this.sessionId, credential = this.options.credential): Promise<Record<string, string>> {
    const headers: Record<string, string> = { ...this.options.headers };
    if (credential) {
      for (const key of Object.keys(headers)) if (key.toLowerCase() === 'authorization') delete headers[key];
      headers.authorization = await credential.authorization();
    }
    if (sessionId) headers['mcp-session-id'] = sessionId;
    if (this.protocolVersion) headers['mcp-protocol-version'] = this.protocolVersion;
    return headers;
  }

  /**
   * The server's own notifications (list_changed …) arrive on a GET stream, if it offers one. When the server
   * closes it, it is reopened from the last event id seen, so nothing sent in between is lost.
   */
  private async openListenStream(): Promise<void> {
    if (this.state === 'closed' || this.listenStream) return;
    const controller = new AbortController();
    this.listenStream = controller;
    let retryMs = STREAM_RETRY_MS;
    try {
      const response = await undici().request(this.options.url, {
        method: 'GET',
        headers: { ...(await this.headers()), accept: 'text/event-stream', ...(this.listenLastEventId ? { 'last-event-id': this.listenLastEventId } : {}) },
        dispatcher: this.agent,
        signal: controller.signal,
      });
      if (response.statusCode !== 200) {
        await response.body.dump();
        return; // 405: this server has no standalone stream
      }
      for await (const event of readSseEvents(response.body)) {
        if (event.id !== undefined) this.listenLastEventId = event.id;
        if (event.retry !== undefined) retryMs = event.retry;
        if (event.data) this.receiveText(event.data, undefined);
      }
    } catch {
      // aborted, or the connection dropped
    } finally {
      if (this.listenStream === controller) this.listenStream = undefined;
    }
    if (!controller.signal.aborted && this.state === 'ready') {
      setTimeout(() => void this.openListenStream(), retryMs).unref();
    }
  }
}

/** The body when it is a JSON-RPC error answering `id`. */
function rpcErrorFor(body: string, id: JsonRpcId): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(body) as { id?: unknown; error?: { code?: unknown } };
    return value?.id === id && typeof value.error?.code === 'number' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The W3C trace context a request carries in `params._meta`, as HTTP headers too: an upstream that traces HTTP
 * (any OTel HTTP instrumentation) joins the call's trace without reading MCP. Only what `_meta` holds is sent.
 */
function traceHeaders(message: JsonRpcMessage): Record<string, string> | undefined {
  const meta = 'params' in message ? (message.params?._meta as Record<string, unknown> | undefined) : undefined;
  if (typeof meta?.traceparent !== 'string') return undefined;
  return { traceparent: meta.traceparent, ...(typeof meta.tracestate === 'string' ? { tracestate: meta.tracestate } : {}) };
}
