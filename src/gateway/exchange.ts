import type { Context, Tracer } from '@opentelemetry/api';
import type { Metrics } from '../ports.ts';
import type { JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../protocol/jsonrpc.ts';
import { rpcError, RpcErrorCode } from '../protocol/jsonrpc.ts';
import { MODERN_PROTOCOL_VERSION, type LogLevel } from '../protocol/mcp.ts';
import { ulid } from '../protocol/ulid.ts';
import type { Caller, ReplyChannel } from '../protocol/call.ts';
import { ClientSession } from './session.ts';
import { readEnvelope } from './era.ts';
import type { Dispatcher, DispatchOutcome } from './dispatcher.ts';
import { GatewayError } from '../errors.ts';
import type { TraceCarrier } from '../protocol/trace-context.ts';
import { endRequestSpan, startRequestSpan } from './request-span.ts';

/** What every front needs of the core: whom to ask, where open sessions are kept, and the upstreams to tell. */
export interface ExchangeServices {
  dispatcher: Pick<Dispatcher, 'handle' | 'subscribeListener'>;
  /** The sessions open on this replica: the ones a broadcast (list_changed, logging) reaches. */
  sessions: {
    add(session: ClientSession): void;
    /** Also ends the session's resource subscriptions. */
    remove(session: ClientSession): void;
  };
  /** Passes on a client notification that concerns every upstream (`notifications/roots/list_changed`). */
  notifyUpstreams(method: string): void;
  /** Told each request's method and duration (`mcp.server.operation.duration`); none when not given. */
  metrics?: Metrics;
  /** Where each request's span goes (OpenTelemetry); the no-op tracer when not given. */
  tracer?: Tracer;
}

/**
 * What every front does with a message once it is framed: answer requests through the dispatcher with a reply
 * channel bound to where the answer goes, route the client's answers to requests we sent it, and act on its
 * notifications. The stdio and HTTP fronts differ only in how bytes come and go.
 */
export class Exchange {
  constructor(private readonly services: ExchangeServices) {}

  /** A session opened on this front: it hears broadcasts until `closed`. */
  opened(session: ClientSession): void {
    this.services.sessions.add(session);
  }

  closed(session: ClientSession): void {
    this.services.sessions.remove(session);
  }

  /**
   * Answers one request. `send` carries messages related to it (progress, logging, requests to the client)
   * ahead of the response. Returns undefined when the client cancelled it: a cancelled request gets no answer.
   */
  async request(session: ClientSession, request: JsonRpcRequest, signal: AbortSignal, send: (message: JsonRpcMessage) => void, headers?: TraceCarrier, accessToken?: string): Promise<JsonRpcResponse | undefined> {
    const { metrics, tracer } = this.services;
    const started = metrics?.enabled ? performance.now() : 0;
    const traced = tracer && startRequestSpan(tracer, session, request, headers);
    const reply = replyChannel(session, request, signal, send, traced?.context, accessToken);
    let outcome: DispatchOutcome | undefined;
    try {
      outcome = await this.services.dispatcher.handle(session, request, reply);
    } finally {
      if (traced) endRequestSpan(traced.span, signal.aborted ? 'cancelled' : outcome ? errorTypeOf(outcome) : 'internal', outcome && 'error' in outcome ? outcome.error.message : undefined);
    }
    if (metrics?.enabled) metrics.operation(request.method, (performance.now() - started) / 1000, signal.aborted ? 'cancelled' : errorTypeOf(outcome));
    if (signal.aborted) return undefined;
    return 'result' in outcome ? { jsonrpc: '2.0', id: request.id, result: outcome.result } : { jsonrpc: '2.0', id: request.id, error: outcome.error };
  }

  /** Subscribes a listen stream's session to a resource, governed as `resources/subscribe`: whether it may watch it. */
  async subscribe(session: ClientSession, uri: string, signal: AbortSignal): Promise<boolean> {
    const request: JsonRpcRequest = { jsonrpc: '2.0', id: `listen-${uri}`, method: 'resources/subscribe', params: { uri } };
    try {
      const outcome = await this.services.dispatcher.subscribeListener(session, uri, replyChannel(session, request, signal, () => undefined, undefined, undefined));
      return 'result' in outcome;
    } catch {
      return false; // not watched: the acknowledgement leaves the URI out
    }
  }

  /** A notification from the client. `inflight` maps its request ids to their cancellers. */
  notification(session: ClientSession, notification: JsonRpcNotification, inflight: ReadonlyMap<string | number, AbortController>): void {
    const params = notification.params ?? {};
    switch (notification.method) {
      case 'notifications/cancelled':
        inflight.get(params.requestId as string | number)?.abort(String(params.reason ?? 'cancelled by the client'));
        return;
      case 'notifications/roots/list_changed':
        this.services.notifyUpstreams(notification.method);
        return;
      default:
        return; // unknown notifications are ignored, as JSON-RPC requires
    }
  }

  /** An answer from the client to a request we sent it. */
  response(session: ClientSession, response: JsonRpcResponse): void {
    session.outgoing.settle(response);
  }

  /**
   * The session a modern (2026-07-28) request runs in, built from its `_meta` envelope: that era keeps no state
   * between requests. Returns a JSON-RPC error when the envelope is malformed or names a version we lack.
   */
  modernSession(request: JsonRpcRequest | JsonRpcNotification, caller: Caller): ClientSession | JsonRpcResponse | undefined {
    const envelope = readEnvelope(request.params);
    if (!envelope) return undefined;
    const id = 'id' in request ? request.id : null;
    if (!envelope.ok) return rpcError(id, RpcErrorCode.INVALID_PARAMS, `Invalid _meta envelope for protocol revision ${MODERN_PROTOCOL_VERSION}: ${envelope.problem}`);
    if (envelope.protocolVersion !== MODERN_PROTOCOL_VERSION) {
      return rpcError(id, -32022, `Unsupported protocol version: ${envelope.protocolVersion}`, { supported: [MODERN_PROTOCOL_VERSION], requested: envelope.protocolVersion });
    }
    const session = new ClientSession(`req-${ulid()}`, 'modern', caller, MODERN_PROTOCOL_VERSION);
    session.capabilities = envelope.capabilities;
    session.clientInfo = envelope.clientInfo;
    session.logLevel = envelope.logLevel as LogLevel | undefined;
    return session;
  }
}

function replyChannel(session: ClientSession, request: JsonRpcRequest, signal: AbortSignal, send: (message: JsonRpcMessage) => void, trace: Context | undefined, accessToken: string | undefined): ReplyChannel {
  const meta = request.params?._meta as Record<string, unknown> | undefined;
  const token = meta?.progressToken;
  return {
    signal,
    ...(trace ? { trace } : {}),
    ...(accessToken ? { accessToken } : {}),
    progressToken: typeof token === 'string' || typeof token === 'number' ? token : undefined,
    notify(method, params) {
      if (method === 'notifications/message' && !session.wantsLog(String(params.level))) return;
      send({ jsonrpc: '2.0', method, params });
    },
    ...(session.era === 'legacy' ? { later: (method: string, params: Record<string, unknown>) => session.push?.({ jsonrpc: '2.0', method, params }) } : {}),
    ask:
      session.era === 'legacy'
        ? (method, params, askSignal) => {
            if (!session.canAsk(method)) {
              return Promise.reject(new GatewayError('GH_ERR_METHOD_NOT_FOUND', `the client did not declare support for ${method}`, { data: { rpcError: { code: RpcErrorCode.METHOD_NOT_FOUND, message: `Client does not support ${method}` } } }));
            }
            return session.outgoing.ask(send, method, params, AbortSignal.any([signal, askSignal]));
          }
        : undefined,
  };
}

/** OTel's `error.type` of an answer: the JSON-RPC error code, `tool_error` for a tool result with isError, else none. */
function errorTypeOf(outcome: { result: unknown } | { error: { code: number } }): string | undefined {
  if ('error' in outcome) return String(outcome.error.code);
  return (outcome.result as { isError?: unknown } | undefined)?.isError === true ? 'tool_error' : undefined;
}
