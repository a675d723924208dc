import type { ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from '../log.ts';
import type { JsonRpcId, JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from '../protocol/jsonrpc.ts';
import { classifyMessage, rpcError, RpcErrorCode } from '../protocol/jsonrpc.ts';
import { LEGACY_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSION } from '../protocol/mcp.ts';
import { nestedDeeperThan, tooDeep } from '../protocol/nesting.ts';
import { isGatewayError } from '../errors.ts';
import type { Caller } from '../protocol/call.ts';
import { Exchange, type ExchangeServices } from './exchange.ts';
import type { TraceCarrier } from '../protocol/trace-context.ts';
import { ClientSession } from './session.ts';
import { SessionRegistry, type LegacyHttpSession, type SessionRegistryServices } from './session-registry.ts';
import { HttpGuard, bearerToken, type HttpGuardOptions } from '../api/http-guard.ts';
import type { OAuthResource } from '../api/oauth-resource.ts';
import { decodeHeaderValue, HEADER_MISMATCH, httpStatusOf, isModernVersion, namedInBody, readEnvelope } from './era.ts';
import { readListenFilter, type ListenFilter } from './listen-filter.ts';
import { listen } from './listen-stream.ts';
import { registerApproverRoutes, type ApproverServices } from '../api/routes.ts';
import { APPROVER_PAGE, approverRouteOf } from '../api/context.ts';
import type { ApproverKeyConfig } from '../api/access.ts';
import { registerMetricsRoute, type MetricsScrape } from '../api/metrics-route.ts';

export interface HttpFrontOptions extends Omit<HttpGuardOptions, 'port' | 'apiKeys' | 'credentialsRequired'> {
  port: number;
  /** `roles: ['approver']` lets a key's principal use the approvals API and pages. */
  apiKeys: ApproverKeyConfig[];
  maxMessageBytes: number;
  /** A legacy session idle this long is forgotten (ms), on every replica. */
  sessionIdleMs?: number;
  /** `limits.maxSessionsPerCaller` (default 1,000). */
  maxSessionsPerCaller?: number;
}

/** What the HTTP front needs of the core, besides what every front and the 2025 sessions need. */
export interface HttpFrontServices extends ExchangeServices, SessionRegistryServices {
  /** What `/healthz` answers: 200 while `ok`, 503 otherwise. */
  health(): { ok: boolean } & Record<string, unknown>;
  /** For the approvals API and pages served beside /mcp. */
  approver: ApproverServices;
  /** Where the front really listens (`http://host:port/mcp`; port 0 picks one), for approval links. */
  listening(url: string): void;
  /** `GET /metrics`, when metrics are on (`metrics.enabled`), with `metrics.token`. */
  metricsEndpoint?: { scrape: MetricsScrape; token?: string };
  /** `auth.oauth`: bearer tokens from the authorization server, beside the API keys. */
  oauth?: OAuthResource;
}

const NOT_JSON = Symbol('not-json');
const LISTEN_KEEP_ALIVE_MS = 15_000;
const LARGE_BODY_CHARS = 1024 * 1024;
const CALLER = Symbol('caller');
/** The access token a request was admitted with (auth.oauth): handed to that request's calls alone, for token exchange. */
const ACCESS_TOKEN = Symbol('accessToken');
/** Route config of what a client reads before it has a token (the protected resource metadata). */
const UNAUTHENTICATED = 'unauthenticated';

/**
 * MCP over Streamable HTTP at /mcp, on fastify, for both eras at once. A 2026-07-28 request (it carries the
 * `_meta` envelope) is served statelessly; anything else uses the 2025 session of its Mcp-Session-Id. A
 * response is one JSON body unless something must be sent before it (progress, logging, a question to the
 * client): then it upgrades to an SSE stream on the spot. A 2025 session works on any replica (SessionRegistry).
 */
export async function serveHttp(services: HttpFrontServices, options: HttpFrontOptions, log: Logger): Promise<{ url: string; app: FastifyInstance; close(): Promise<void> }> {
  const exchange = new Exchange(services);
  const sessions = new SessionRegistry(services, exchange, options.sessionIdleMs ?? 30 * 60_000, log, options.maxSessionsPerCaller);
  const app = Fastify({ bodyLimit: options.maxMessageBytes, logger: false, return503OnClosing: true, forceCloseConnections: true });
  let guard: HttpGuard | undefined;
  const oauth = services.oauth;

  // JSON in any spelling of its media type (`application/JSON; charset=utf-8`), read here rather than by fastify's
  // matching. Forms only for the approval pages' posts; /mcp answers anything but JSON with 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))));
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    if (!isJsonMediaType(request.headers['content-type'])) return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(null, NOT_JSON);
    }
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _request, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send(rpcError(null, RpcErrorCode.REQUEST_TOO_LARGE, `message exceeds ${options.maxMessageBytes} bytes`, { code: 'GH_ERR_BODY_TOO_LARGE' }));
    }
    // Redis failing under a 2025 session's lookup (distributed mode): coded and retryable, never a bare 500.
    if (isGatewayError(err, 'GH_ERR_STATE_UNAVAILABLE')) return reply.code(503).send(rpcError(null, RpcErrorCode.SERVER_ERROR, err.message, { code: err.code }));
    log.error('HTTP request failed', { error: err.message });
    return reply.code(err.statusCode && err.statusCode < 500 ? err.statusCode : 500).send(rpcError(null, RpcErrorCode.INTERNAL_ERROR, err.statusCode && err.statusCode < 500 ? err.message : 'internal error', { code: 'GH_ERR_INTERNAL' }));
  });

  // A callback hook, not an async one: it runs on every request, and a promise per request is measurable.
  app.addHook('onRequest', (request, reply, done) => {
    if (!guard) return reply.code(503).send(rpcError(null, RpcErrorCode.SERVER_ERROR, 'starting up'));
    const approverRoute = approverRouteOf(request);
    // The approval pages send Referrer-Policy: no-referrer, so browsers post their forms with `Origin: null`;
    // those posts are held to a CSRF token and a SameSite=Strict cookie instead.
    const origin = approverRoute === APPROVER_PAGE && request.headers.origin === 'null' ? undefined : request.headers.origin;
    const problem = guard.checkOrigin(request.headers.host, origin);
    if (problem) return reply.code(403).send(rpcError(null, RpcErrorCode.SERVER_ERROR, `Forbidden: ${problem}`, { code: 'GH_ERR_FORBIDDEN_ORIGIN' }));
    // The approvals API and pages admit approvers themselves: approver keys, a session cookie, or the local user.
    if (approverRoute) return done();
    // Every route, /healthz included, sits behind the keys when there are keys: deciding by URL prefix would
    // let `/%6Dcp` (which routes to /mcp) through.
    const caller = guard.authenticate(request.headers.authorization, header(request, 'x-api-key'));
    if (caller) {
      (request as unknown as Record<symbol, Caller>)[CALLER] = caller;
      return done();
    }
    if (!oauth) {
      reply.header('www-authenticate', 'Bearer');
      return reply.code(401).send(rpcError(null, RpcErrorCode.SERVER_ERROR, 'Unauthorized: send an API key as "Authorization: Bearer <key>"', { code: 'GH_ERR_UNAUTHORIZED' }));
    }
    if ((request.routeOptions.config as unknown as Record<string, unknown> | undefined)?.[UNAUTHENTICATED] === true) return done();
    // Not an API key: an access token, checked (perhaps at the authorization server) before the request goes on.
    const token = bearerToken(request.headers.authorization);
    if (!token) {
      reply.header('www-authenticate', oauth.challenge());
      return reply.code(401).send(rpcError(null, RpcErrorCode.SERVER_ERROR, 'Unauthorized: send an access token (or an API key) as "Authorization: Bearer <token>"', { code: 'GH_ERR_UNAUTHORIZED' }));
    }
    oauth.admit(token).then((admission) => {
      if (admission.refused) {
        const { status, code, message, challenge } = admission.refused;
        return void reply.code(status).header('www-authenticate', challenge).send(rpcError(null, RpcErrorCode.SERVER_ERROR, message, { code }));
      }
      (request as unknown as Record<symbol, Caller>)[CALLER] = admission.identity.caller;
      (request as unknown as Record<symbol, string>)[ACCESS_TOKEN] = token;
      done();
    }, done);
  });

  if (oauth) {
    // RFC 9728: where a client learns which authorization server issues tokens for this resource.
    for (const path of oauth.metadataPaths) app.get(path, { config: { [UNAUTHENTICATED]: true } }, async (_request, reply) => reply.header('cache-control', 'max-age=300').send(oauth.metadata()));
  }

  app.get('/healthz', async (_request, reply) => {
    const health = services.health();
    return reply.code(health.ok ? 200 : 503).send(health);
  });

  app.post('/mcp', async (request, reply) => {
    const caller = (request as unknown as Record<symbol, Caller>)[CALLER];
    if (!isJsonMediaType(request.headers['content-type'])) return reply.code(415).send(unsupportedMediaType());
    if (request.body === NOT_JSON || request.body === undefined) {
      return reply.code(400).send(rpcError(null, RpcErrorCode.PARSE_ERROR, 'Parse error: the body is not valid JSON', { code: 'GH_ERR_PARSE' }));
    }
    if (Array.isArray(request.body)) {
      return reply.code(400).send(rpcError(null, RpcErrorCode.INVALID_REQUEST, 'JSON-RPC batches are not supported', { code: 'GH_ERR_INVALID_REQUEST' }));
    }
    const msg = classifyMessage(request.body);
    if (msg.kind === 'invalid') {
      return reply.code(400).send(rpcError(msg.id, RpcErrorCode.INVALID_REQUEST, `Invalid request: ${msg.reason}`, { code: 'GH_ERR_INVALID_REQUEST' }));
    }
    // Refused here, before anything walks it: a request gets its JSON-RPC error, anything else a 400.
    if (nestedDeeperThan(request.body)) return msg.kind === 'request' ? reply.send(tooDeep(msg.message.id)) : reply.code(400).send(tooDeep(null));
    if (msg.kind === 'request' || msg.kind === 'notification') {
      const versionHeader = header(request, 'mcp-protocol-version');
      const envelope = readEnvelope(msg.message.params);
      if (envelope || isModernVersion(versionHeader)) {
        return serveModern(request, reply, msg.message, caller);
      }
    }
    return serveLegacy(request, reply, msg, caller);
  });

  app.get('/mcp', async (request, reply) => {
    const found = cachedSession(request) ?? (await legacySession(request, reply));
    if (!found) return reply;
    if (!String(request.headers.accept ?? '').includes('text/event-stream')) {
      return reply.code(406).send(rpcError(null, RpcErrorCode.SERVER_ERROR, 'Not Acceptable: the GET stream is text/event-stream'));
    }
    // One GET stream per session, whichever replica holds it.
    if (found.stream || !(await sessions.claimStream(found)) || found.stream) {
      return reply.code(409).send(rpcError(null, RpcErrorCode.SERVER_ERROR, 'Conflict: this session already has a GET stream'));
    }
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'mcp-session-id': found.session.id });
    raw.flushHeaders();
    sessions.attachStream(found, raw, (message) => writeEvent(raw, message));
    return reply;
  });

  app.delete('/mcp', async (request, reply) => {
    const found = cachedSession(request) ?? (await legacySession(request, reply));
    if (!found) return reply;
    await sessions.end(found);
    return reply.code(200).send();
  });

  async function serveModern(request: FastifyRequest, reply: FastifyReply, message: JsonRpcRequest | { jsonrpc: '2.0'; method: string; params?: Record<string, unknown> }, caller: Caller) {
    const id = 'id' in message ? message.id : null;
    const versionHeader = header(request, 'mcp-protocol-version');
    const methodHeader = header(request, 'mcp-method');
    // A header that disagrees with the body is refused before the body's version is judged (-32020, not -32022).
    const envelope = readEnvelope(message.params);
    if (versionHeader && envelope?.ok && versionHeader !== envelope.protocolVersion) {
      return reply.code(400).send(rpcError(id, HEADER_MISMATCH, 'MCP-Protocol-Version header does not match the _meta envelope', { mismatch: { header: versionHeader, body: envelope.protocolVersion } }));
    }
    const session = exchange.modernSession(message, caller);
    if (!session) {
      return reply.code(400).send(rpcError(id, RpcErrorCode.INVALID_PARAMS, `Requests for protocol revision ${MODERN_PROTOCOL_VERSION} must carry the _meta envelope`, { envelope: { missing: ['io.modelcontextprotocol/protocolVersion', 'io.modelcontextprotocol/clientCapabilities'] } }));
    }
    if (!(session instanceof ClientSession)) return reply.code(400).send(session);
    // SEP-2243: a request repeats its method, and what it names, in headers that intermediaries route on. One that
    // leaves them out is refused like one whose headers disagree (a notification carries no Mcp-Method from the SDK).
    if (methodHeader === undefined && 'id' in message) {
      return reply.code(400).send(rpcError(id, HEADER_MISMATCH, 'A 2026-07-28 request must carry the Mcp-Method header', { missing: 'mcp-method' }));
    }
    if (methodHeader !== undefined && methodHeader !== message.method) {
      return reply.code(400).send(rpcError(id, HEADER_MISMATCH, 'Mcp-Method header does not match the body', { mismatch: { header: methodHeader, body: message.method } }));
    }
    const nameHeader = header(request, 'mcp-name');
    const named = namedInBody(message.method, message.params);
    if (nameHeader === undefined && named !== undefined) {
      return reply.code(400).send(rpcError(id, HEADER_MISMATCH, `A 2026-07-28 ${message.method} must carry the Mcp-Name header`, { missing: 'mcp-name' }));
    }
    if (nameHeader !== undefined && named !== undefined && decodeHeaderValue(nameHeader) !== named) {
      return reply.code(400).send(rpcError(id, HEADER_MISMATCH, 'Mcp-Name header does not match the body', { mismatch: { header: nameHeader, body: named } }));
    }
    if (!('id' in message)) return reply.code(202).send();
    if (message.method === 'subscriptions/listen') {
      const filter = readListenFilter(message.params);
      if (!filter) return reply.send(rpcError(message.id, RpcErrorCode.INVALID_PARAMS, "Invalid params: 'notifications' is required and must be a subscription filter"));
      return serveListen(reply, session, message.id, filter);
    }
    return respond(request, reply, session, message, new Map(), undefined);
  }

  /** A `subscriptions/listen` stream: SSE from the acknowledgement on, until the client goes away. */
  async function serveListen(reply: FastifyReply, session: ClientSession, id: JsonRpcId, filter: ListenFilter) {
    reply.hijack();
    const raw = reply.raw;
    const gone = new AbortController();
    raw.on('close', () => gone.abort('the client went away'));
    const send = (message: JsonRpcMessage) => {
      if (raw.destroyed) return;
      if (!raw.headersSent) raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive' });
      writeEvent(raw, message);
    };
    if (!(await listen(session, id, filter, exchange, services.sessions, send, gone.signal))) return void raw.end();
    // An idle stream's comment, so that proxies between do not time it out.
    const keepAlive = setInterval(() => raw.write(': keepalive\n\n'), LISTEN_KEEP_ALIVE_MS);
    keepAlive.unref();
    raw.on('close', () => clearInterval(keepAlive));
  }

  async function serveLegacy(request: FastifyRequest, reply: FastifyReply, msg: ReturnType<typeof classifyMessage>, caller: Caller) {
    if (msg.kind === 'request' && msg.message.method === 'initialize') {
      await sessions.makeRoomFor(caller);
      const entry = sessions.create(caller);
      reply.header('mcp-session-id', entry.session.id);
      return respond(request, reply, entry.session, msg.message, entry.inflight, entry);
    }
    const found = cachedSession(request) ?? (await legacySession(request, reply));
    if (!found) return reply;
    const version = header(request, 'mcp-protocol-version');
    if (version && !(LEGACY_PROTOCOL_VERSIONS as readonly string[]).includes(version)) {
      return reply.code(400).send(rpcError(null, RpcErrorCode.SERVER_ERROR, `Bad Request: unsupported MCP-Protocol-Version ${version}`));
    }
    sessions.seen(found);
    switch (msg.kind) {
      case 'notification': {
        const { method, params } = msg.message;
        const requestId = params?.requestId;
        // A request runs on the replica it reached; its cancellation may reach another.
        if (method === 'notifications/cancelled' && (typeof requestId === 'string' || typeof requestId === 'number') && !found.inflight.has(requestId)) {
          await sessions.cancelElsewhere(found, requestId, String(params?.reason ?? 'cancelled by the client'));
        } else {
          exchange.notification(found.session, msg.message, found.inflight);
        }
        return reply.code(202).send();
      }
      case 'response':
        await sessions.answer(found, msg.message);
        return reply.code(202).send();
      case 'request':
        return respond(request, reply, found.session, msg.message, found.inflight, found);
      default:
        return reply.code(400).send();
    }
  }

  /**
   * Runs one request: a JSON answer, or an SSE stream from the first message that must precede the answer.
   * `stored`: the 2025 session, whose changes are stored before the answer goes out.
   */
  async function respond(request: FastifyRequest, reply: FastifyReply, session: ClientSession, message: JsonRpcRequest, inflight: Map<string | number, AbortController>, stored: LegacyHttpSession | undefined) {
    const controller = new AbortController();
    inflight.set(message.id, controller);
    let streaming = false;
    let done = false;
    const raw = reply.raw;
    // The client going away before the answer is a cancellation (modern clients cancel exactly this way).
    raw.on('close', () => {
      if (!done) controller.abort('the client disconnected');
    });
    const send = (out: JsonRpcMessage) => {
      if (done || raw.destroyed) return;
      if (!streaming) {
        streaming = true;
        reply.hijack();
        raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', ...sessionHeader(reply) });
      }
      writeEvent(raw, out);
    };
    let response: JsonRpcResponse | undefined;
    try {
      response = await exchange.request(session, message, controller.signal, send, traceHeaders(request), (request as unknown as Record<symbol, string | undefined>)[ACCESS_TOKEN]);
    } finally {
      done = true;
      inflight.delete(message.id);
    }
    const storing = stored && response ? sessions.beforeAnswer(stored, message.method, response) : undefined;
    if (storing) {
      try {
        await storing;
      } catch (err) {
        const code = isGatewayError(err) ? err.code : 'GH_ERR_INTERNAL';
        response = rpcError(message.id, RpcErrorCode.SERVER_ERROR, `the session could not be stored: ${(err as Error).message}`, { code });
        if (!streaming) reply.removeHeader('mcp-session-id');
      }
    }
    if (streaming) {
      if (response && !raw.destroyed) writeEvent(raw, response);
      raw.end();
      return reply;
    }
    if (!response) return reply.code(204).send();
    // The common case, written straight to the socket: fastify's reply pipeline has nothing to add here. Encoded
    // once: measuring the text's length and then writing it would pass over a large result twice.
    reply.hijack();
    const text = JSON.stringify(response);
    // A large answer is encoded in a turn of its own, so others' requests are served between the two passes.
    if (text.length >= LARGE_BODY_CHARS) await new Promise((resolve) => setImmediate(resolve));
    if (raw.destroyed) return reply;
    const body = Buffer.from(text, 'utf8');
    raw.writeHead(httpStatusOf(session.era, 'error' in response ? response.error : undefined), { 'content-type': 'application/json', 'content-length': body.length, ...sessionHeader(reply) });
    raw.end(body);
    return reply;
  }

  /** This replica's copy of the request's 2025 session: the hot path, no I/O. */
  function cachedSession(request: FastifyRequest): LegacyHttpSession | undefined {
    return sessions.cached(header(request, 'mcp-session-id'), (request as unknown as Record<symbol, Caller>)[CALLER]);
  }

  /** On a miss: the session from the Store, started on another replica; or replies that there is none. */
  async function legacySession(request: FastifyRequest, reply: FastifyReply): Promise<LegacyHttpSession | undefined> {
    const id = header(request, 'mcp-session-id');
    if (!id) {
      void reply.code(400).send(rpcError(null, RpcErrorCode.SERVER_ERROR, 'Bad Request: Mcp-Session-Id header is required (send initialize first)', { code: 'GH_ERR_SESSION_NOT_FOUND' }));
      return undefined;
    }
    const found = await sessions.adopt(id, (request as unknown as Record<symbol, Caller>)[CALLER]);
    if (!found) void reply.code(404).send(rpcError(null, -32001, 'Session not found', { code: 'GH_ERR_SESSION_NOT_FOUND' }));
    return found;
  }

  await registerApproverRoutes(app, { ...services.approver, host: options.host, apiKeys: options.apiKeys, anonymous: options.anonymous, log, ...(oauth ? { oauth } : {}) });
  if (services.metricsEndpoint) registerMetricsRoute(app, { ...services.metricsEndpoint, host: options.host, apiKeys: options.apiKeys, anonymous: options.anonymous, ...(oauth ? { oauth } : {}) });

  const address = await app.listen({ host: options.host, port: options.port });
  const port = Number(new URL(address).port);
  guard = new HttpGuard({ ...options, port, credentialsRequired: oauth !== undefined });
  const hostForUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${hostForUrl}:${port}/mcp`;
  // Approval links point here unless approvals.publicUrl says otherwise (the port may have been 0).
  services.listening(url);
  return {
    url,
    app,
    close: async () => {
      sessions.close();
      await app.close();
    },
  };
}

/** Whether a Content-Type names JSON: `application/json` in any case, with or without parameters. */
function isJsonMediaType(type: string | undefined): boolean {
  if (type === undefined) return false;
  if (type === 'application/json') return true;
  const semicolon = type.indexOf(';');
  return (semicolon < 0 ? type : type.slice(0, semicolon)).trim().toLowerCase() === 'application/json';
}

const unsupportedMediaType = () => rpcError(null, RpcErrorCode.SERVER_ERROR, 'Unsupported Media Type: MCP messages are application/json', { code: 'GH_ERR_UNSUPPORTED_MEDIA_TYPE' });

function writeEvent(raw: ServerResponse, message: JsonRpcMessage): void {
  raw.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value.trim() : undefined;
}

/** The W3C trace context of the HTTP request, when the client sent one: the parent of a request whose `_meta` names none. */
function traceHeaders(request: FastifyRequest): TraceCarrier | undefined {
  const traceparent = header(request, 'traceparent');
  return traceparent === undefined ? undefined : { traceparent, tracestate: header(request, 'tracestate') };
}

function sessionHeader(reply: FastifyReply): Record<string, string> {
  const id = reply.getHeader('mcp-session-id');
  return typeof id === 'string' ? { 'mcp-session-id': id } : {};
}
