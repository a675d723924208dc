import type { ProgressUpdate, ServerRequestHandler, UpstreamCredential, UpstreamListener, UpstreamRequestOptions } from '../../src/ports.ts';
import { GatewayError } from '../../src/errors.ts';
import type { JsonRpcId, JsonRpcMessage, JsonRpcResponse } from '../../src/protocol/jsonrpc.ts';
import { classifyMessage, rpcError, RpcErrorCode } from '../../src/protocol/jsonrpc.ts';
import type { OversizedMessage } from '../../src/protocol/oversized-message.ts';

interface Pending {
  method: string;
  resolve(result: Record<string, unknown>): void;
  reject(err: Error): void;
  onProgress?: (update: ProgressUpdate) => void;
  onServerRequest?: ServerRequestHandler;
  onNotification?: (method: string, params: Record<string, unknown> | undefined) => void;
  restartTimer?: () => void;
  /** Runs however the request ends; `answered` is false for a timeout, a cancellation or a lost connection. */
  ended?: (answered: boolean) => void;
  cleanup(): void;
}

/**
 * The client half of a JSON-RPC connection to an upstream MCP server, independent of how bytes move. It owns
 * request ids, progress tokens, timeouts (restarted by progress), cancellation and server→client requests.
 * The stdio and HTTP upstreams feed it incoming messages and give it a way to send.
 */
/** What the transport needs besides a message: the request it relates to, the request's own credential (HTTP). */
type SendContext = { relatedRequestId?: JsonRpcId; credential?: UpstreamCredential };

export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<JsonRpcId, Pending>();
  private readonly serverRequests = new Map<JsonRpcId, AbortController>();
  /**
   * The 2026-07-28 envelope, once the upstream speaks that revision: merged into the `_meta` of every request and
   * notification sent (the caller's own keys win), never into a response.
   */
  envelope: Record<string, unknown> | undefined;

  constructor(
    private readonly upstreamName: string,
    private readonly send: (message: JsonRpcMessage, context?: SendContext) => void | Promise<void>,
    private readonly listener: () => UpstreamListener,
  ) {}

  get inFlight(): number {
    return this.pending.size;
  }

  isPending(id: JsonRpcId): boolean {
    return this.pending.has(id);
  }

  /**
   * Calls `fn` once when the request ends: `answered` true when the upstream answered it (result or error),
   * false when it timed out, was cancelled or its connection failed. Returns false if it has already ended.
   */
  onEnd(id: JsonRpcId, fn: (answered: boolean) => void): boolean {
    const pending = this.pending.get(id);
    if (!pending) return false;
    const previous = pending.ended;
    pending.ended = (answered) => {
      previous?.(answered);
      fn(answered);
    };
    return true;
  }

  request(method: string, params: Record<string, unknown> | undefined, options: UpstreamRequestOptions = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    if (options.signal?.aborted) return Promise.reject(cancelledError(this.upstreamName, options.signal));
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        this.pending.delete(id);
        pending.cleanup();
        pending.ended?.(false);
        this.notify('notifications/cancelled', { requestId: id, reason: String(options.signal?.reason ?? 'cancelled') }).catch(() => undefined);
        reject(cancelledError(this.upstreamName, options.signal));
      };
      const restartTimer = options.timeoutMs
        ? () => {
            if (timer) clearTimeout(timer);
            timer = setTimeout(() => {
              this.pending.delete(id);
              pending.cleanup();
              pending.ended?.(false);
              this.notify('notifications/cancelled', { requestId: id, reason: 'timeout' }).catch(() => undefined);
              reject(new GatewayError('GH_ERR_UPSTREAM_TIMEOUT', `${this.upstreamName} did not answer ${method} within ${options.timeoutMs} ms`, {
                data: { upstream: this.upstreamName, method, timeoutMs: options.timeoutMs },
              }));
            }, options.timeoutMs);
          }
        : undefined;
      const pending: Pending = {
        method,
        resolve,
        reject,
        onProgress: options.onProgress,
        onServerRequest: options.onServerRequest,
        onNotification: options.onNotification,
        restartTimer,
        cleanup: () => {
          if (timer) clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
        },
      };
      this.pending.set(id, pending);
      restartTimer?.();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      let sendParams = params;
      if (options.onProgress || this.envelope) {
        const meta = { ...this.envelope, ...((params?._meta as Record<string, unknown>) ?? {}), ...(options.onProgress ? { progressToken: id } : {}) };
        sendParams = { ...params, _meta: meta };
      }
      const message = sendParams === undefined ? { jsonrpc: '2.0' as const, id, method } : { jsonrpc: '2.0' as const, id, method, params: sendParams };
      this.post(message, options.credential ? { credential: options.credential } : undefined).catch((err: unknown) => this.settle(id, undefined, unavailable(this.upstreamName, err), false));
    });
  }

  async notify(method: string, params?: Record<string, unknown>): Promise<void> {
    const enveloped = this.envelope ? { ...params, _meta: { ...this.envelope, ...((params?._meta as Record<string, unknown>) ?? {}) } } : params;
    await this.post(enveloped === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params: enveloped });
  }

  /**
   * Sends through the transport, always as a promise: a transport that throws (a dead process) must reject,
   * never throw into a timer or an abort listener, where it would take the whole gateway down.
   */
  private post(message: JsonRpcMessage, context?: SendContext): Promise<void> {
    return Promise.resolve().then(() => this.send(message, context));
  }

  /** Feeds one incoming message. `relatedRequestId` is set when the transport knows which request it belongs to. */
  receive(value: unknown, relatedRequestId?: JsonRpcId): void {
    const msg = classifyMessage(value);
    switch (msg.kind) {
      case 'response': {
        const response = msg.message;
        if ('error' in response) {
          const { code, message, data } = response.error;
          this.settle(response.id ?? -1, undefined, new GatewayError('GH_ERR_UPSTREAM_ERROR', `${this.upstreamName}: ${message}`, {
            data: { upstream: this.upstreamName, rpcError: { code, message, ...(data === undefined ? {} : { data }) } },
          }));
        } else {
          this.settle(response.id, response.result);
        }
        return;
      }
      case 'notification':
        this.onNotification(msg.message.method, msg.message.params, relatedRequestId);
        return;
      case 'request':
        void this.onServerRequest(msg.message.id, msg.message.method, msg.message.params, relatedRequestId);
        return;
      case 'invalid':
        return; // a broken upstream message is dropped; the request it belonged to times out
    }
  }

  /**
   * A message too large to read arrived. A response fails the request it answers with `error`, or every request
   * in flight when its id cannot be read; a server request is answered with an error, so the server need not
   * wait for a reply that cannot come.
   */
  tooLarge(message: OversizedMessage, error: GatewayError): void {
    if (message.hasMethod) {
      if (message.id !== undefined) void this.post(rpcError(message.id, RpcErrorCode.INVALID_REQUEST, error.message, { code: error.code })).catch(() => undefined);
      return;
    }
    if (message.id === undefined) {
      for (const id of [...this.pending.keys()]) this.settle(id, undefined, error);
    } else {
      this.settle(message.id, undefined, error);
    }
  }

  /** Fails every request in flight: the connection is gone. */
  failAll(err: Error): void {
    const entries = [...this.pending.values()];
    this.pending.clear();
    for (const p of entries) {
      p.cleanup();
      p.ended?.(false);
      p.reject(err);
    }
    for (const controller of this.serverRequests.values()) controller.abort(err);
    this.serverRequests.clear();
  }

  private settle(id: JsonRpcId, result: Record<string, unknown> | undefined, error?: Error, answered = true): void {
    const pending = this.pending.get(id);
    if (!pending) return; // late answer to a request that timed out or was cancelled
    this.pending.delete(id);
    pending.cleanup();
    pending.ended?.(answered);
    if (error) pending.reject(error);
    else pending.resolve(result ?? {});
  }

  private onNotification(method: string, params: Record<string, unknown> | undefined, relatedRequestId?: JsonRpcId): void {
    if (method === 'notifications/progress' && params) {
      const pending = this.pending.get(params.progressToken as JsonRpcId);
      if (pending?.onProgress) {
        pending.restartTimer?.();
        pending.onProgress({
          progress: Number(params.progress),
          ...(params.total === undefined ? {} : { total: Number(params.total) }),
          ...(params.message === undefined ? {} : { message: String(params.message) }),
        });
      }
      return;
    }
    if (method === 'notifications/cancelled' && params) {
      this.serverRequests.get(params.requestId as JsonRpcId)?.abort(params.reason ?? 'cancelled');
      return;
    }
    // A notification about a request (logging during a call) goes to that request: the transport's hint wins,
    // and on stdio a lone request in flight is the only candidate.
    const related = relatedRequestId !== undefined ? this.pending.get(relatedRequestId) : this.pending.size === 1 ? this.pending.values().next().value : undefined;
    if (related?.onNotification && method === 'notifications/message') {
      related.onNotification(method, params);
      return;
    }
    this.listener().notification?.(method, params);
  }

  private async onServerRequest(id: JsonRpcId, method: string, params: Record<string, unknown> | undefined, relatedRequestId?: JsonRpcId): Promise<void> {
    const handler = this.handlerFor(relatedRequestId);
    let response: JsonRpcResponse;
    if (method === 'ping') {
      response = { jsonrpc: '2.0', id, result: {} };
    } else if (!handler) {
      response = rpcError(id, RpcErrorCode.METHOD_NOT_FOUND, `no client connected to Gatehouse can answer ${method} right now`);
    } else {
      const controller = new AbortController();
      this.serverRequests.set(id, controller);
      try {
        response = { jsonrpc: '2.0', id, result: await handler(method, params, controller.signal) };
      } catch (err) {
        const rpc = (err as GatewayError).data?.rpcError as { code: number; message: string; data?: unknown } | undefined;
        response = rpc ? rpcError(id, rpc.code, rpc.message, rpc.data) : rpcError(id, RpcErrorCode.INTERNAL_ERROR, (err as Error).message);
      } finally {
        this.serverRequests.delete(id);
      }
    }
    await this.post(response, { relatedRequestId }).catch(() => undefined);
  }

  /**
   * Which client should answer a server→client request. When the transport knows the request it belongs to
   * (HTTP knows the stream), only that request's client may answer: asking another client's human would be
   * worse than failing. On stdio there is no hint: the only request in flight that can answer, if there is
   * exactly one.
   */
  private handlerFor(relatedRequestId: JsonRpcId | undefined): ServerRequestHandler | undefined {
    const related = relatedRequestId === undefined ? undefined : this.pending.get(relatedRequestId);
    if (related) return related.onServerRequest;
    // Without a transport hint (stdio), ask only when one request in flight could have caused it: with
    // several, guessing could put one user's question to another user's client.
    let candidate: ServerRequestHandler | undefined;
    for (const p of this.pending.values()) {
      if (!p.onServerRequest) continue;
      if (candidate && candidate !== p.onServerRequest) return undefined;
      candidate = p.onServerRequest;
    }
    return candidate ?? this.listener().serverRequest;
  }
}

function cancelledError(upstream: string, signal: AbortSignal | undefined): GatewayError {
  return new GatewayError('GH_ERR_CANCELLED', `the request to ${upstream} was cancelled`, { data: { reason: String(signal?.reason ?? '') } });
}

export function unavailable(upstream: string, cause: unknown): GatewayError {
  // A process that died left its last stderr lines on the error: they say why.
  const stderr = (cause as { stderr?: unknown } | undefined)?.stderr;
  return new GatewayError('GH_ERR_UPSTREAM_UNAVAILABLE', `upstream ${upstream} is unavailable: ${(cause as Error)?.message ?? cause}`, {
    cause,
    data: { upstream, ...(Array.isArray(stderr) && stderr.length ? { stderr } : {}) },
  });
}
