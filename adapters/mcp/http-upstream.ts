import { Agent, request } from 'undici';
import type { Logger } from '../../src/log.ts';
import type { JsonRpcId, JsonRpcMessage } from '../../src/protocol/jsonrpc.ts';
import { RpcErrorCode } from '../../src/protocol/jsonrpc.ts';
import { ReconnectingUpstream } from './reconnecting-upstream.ts';
import { readSseData } from './sse-reader.ts';

export interface HttpUpstreamOptions {
  url: string;
  /** Sent on every request: the upstream's own credentials, never a client's token. */
  headers: Record<string, string>;
}

const STREAM_RETRY_MS = 1_000;

/**
 * An upstream MCP server over Streamable HTTP (2025-11-25, sessionful), via undici with keep-alive. Answers
 * arrive as JSON or as an SSE stream; anything on a request's stream (progress, server→client requests) is
 * attributed to that request. A standalone GET stream carries the server's own notifications when offered.
 */
export class HttpUpstream extends ReconnectingUpstream {
  private readonly agent = new Agent({ keepAliveTimeout: 30_000, connections: 128, pipelining: 1 });
  private sessionId: string | undefined;
  private protocolVersion: string | undefined;
  private listenStream: AbortController | undefined;

  constructor(
    name: string,
    private readonly options: HttpUpstreamOptions,
    log: Logger,
  ) {
    super(name, log);
  }

  protected async open(): Promise<void> {
    this.sessionId = undefined;
    this.protocolVersion = undefined;
  }

  protected override afterHandshake(protocolVersion: string): void {
    this.protocolVersion = protocolVersion;
    void this.openListenStream();
  }

  protected async shut(): Promise<void> {
    this.listenStream?.abort();
    this.listenStream = undefined;
    const sessionId = this.sessionId;
    this.sessionId = undefined;
    if (sessionId) {
      await request(this.options.url, { method: 'DELETE', headers: this.headers(), dispatcher: this.agent })
        .then((r) => r.body.dump())
        .catch(() => undefined);
    }
  }

  override async close(): Promise<void> {
    await super.close();
    await this.agent.close().catch(() => undefined);
  }

  protected async transmit(message: JsonRpcMessage, relatedRequestId?: JsonRpcId): Promise<void> {
    const requestId = 'id' in message && 'method' in message ? message.id : undefined;
    let response;
    try {
      response = await request(this.options.url, {
        method: 'POST',
        headers: { ...this.headers(), 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify(message),
        dispatcher: this.agent,
      });
    } catch (err) {
      if (this.state === 'ready') this.connectionLost(err as Error);
      throw err;
    }
    const session = response.headers['mcp-session-id'];
    if (typeof session === 'string' && 'method' in message && message.method === 'initialize') this.sessionId = session;
    const type = String(response.headers['content-type'] ?? '');
    if (response.statusCode === 404 && this.sessionId) {
      await response.body.dump();
      this.connectionLost(new Error('the upstream forgot our session (404)'));
      return;
    }
    if (response.statusCode >= 400) {
      const text = await response.body.text().catch(() => '');
      if (requestId !== undefined) {
        this.rpc.receive({
          jsonrpc: '2.0',
          id: requestId,
          error: { code: RpcErrorCode.SERVER_ERROR, message: `HTTP ${response.statusCode}${text ? `: ${text.slice(0, 200)}` : ''}` },
        });
      }
      return;
    }
    if (type.includes('text/event-stream')) {
      for await (const data of readSseData(response.body)) this.receiveText(data, requestId ?? relatedRequestId);
    } else if (type.includes('application/json')) {
      this.receiveText(await response.body.text(), requestId ?? relatedRequestId);
    } else {
      await response.body.dump();
    }
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

  private headers(): Record<string, string> {
    const headers: Record<string, string> = { ...this.options.headers };
    if (this.sessionId) headers['mcp-session-id'] = this.sessionId;
    if (this.protocolVersion) headers['mcp-protocol-version'] = this.protocolVersion;
    return headers;
  }

  /** The server's own notifications (list_changed …) arrive on a GET stream, if it offers one. */
  private async openListenStream(): Promise<void> {
    if (this.state === 'closed' || this.listenStream) return;
    const controller = new AbortController();
    this.listenStream = controller;
    try {
      const response = await request(this.options.url, {
        method: 'GET',
        headers: { ...this.headers(), accept: 'text/event-stream' },
        dispatcher: this.agent,
        signal: controller.signal,
      });
      if (response.statusCode !== 200) {
        await response.body.dump();
        return; // 405: this server has no standalone stream
      }
      for await (const data of readSseData(response.body)) this.receiveText(data, undefined);
    } catch {
      // aborted, or the connection dropped
    } finally {
      if (this.listenStream === controller) this.listenStream = undefined;
    }
    if (!controller.signal.aborted && this.state === 'ready') {
      setTimeout(() => void this.openListenStream(), STREAM_RETRY_MS).unref();
    }
  }
}
