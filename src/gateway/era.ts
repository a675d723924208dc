import { MODERN_PROTOCOL_VERSION } from '../protocol/mcp.ts';
import { RpcErrorCode } from '../protocol/jsonrpc.ts';
import { GATEHOUSE_VERSION } from '../protocol/version.ts';
import type { Era } from '../protocol/call.ts';

export const SERVER_INFO = { name: 'gatehouse', version: GATEHOUSE_VERSION };
export const ENVELOPE = {
  protocolVersion: 'io.modelcontextprotocol/protocolVersion',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  logLevel: 'io.modelcontextprotocol/logLevel',
  serverInfo: 'io.modelcontextprotocol/serverInfo',
  subscriptionId: 'io.modelcontextprotocol/subscriptionId',
} as const;

const CACHEABLE = new Set(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read', 'server/discover']);

/** Methods the 2026-07-28 revision removed; a modern client calling them gets -32601 (HTTP 404). */
export const REMOVED_IN_MODERN = new Set(['initialize', 'ping', 'logging/setLevel', 'resources/subscribe', 'resources/unsubscribe']);

/**
 * Shapes a result for the client's era. The 2026-07-28 revision requires `resultType`, cache hints on
 * cacheable results and (should) carries serverInfo in `_meta`; a 2025 client gets the result as is.
 */
export function encodeResult(era: Era, method: string, result: Record<string, unknown>): Record<string, unknown> {
  if (era === 'legacy') return result;
  const out: Record<string, unknown> = { ...result };
  if (out.resultType === undefined) out.resultType = 'complete';
  if (CACHEABLE.has(method)) {
    if (out.ttlMs === undefined) out.ttlMs = 0;
    if (out.cacheScope === undefined) out.cacheScope = 'private';
  }
  out._meta = { ...((result._meta as Record<string, unknown>) ?? {}), [ENVELOPE.serverInfo]: SERVER_INFO };
  return out;
}

/**
 * The HTTP status of a JSON answer. The 2026-07-28 revision has a method the server lacks answered 404, and a
 * capability the client did not declare 400 (-32021); every other answer, and any 2025 one, is 200.
 */
export function httpStatusOf(era: Era, error: { code: number } | undefined): number {
  if (era === 'legacy' || !error) return 200;
  if (error.code === RpcErrorCode.METHOD_NOT_FOUND) return 404;
  return error.code === MISSING_CLIENT_CAPABILITY ? 400 : 200;
}

/** A request needs a capability the client did not declare in its envelope (2026-07-28). */
export const MISSING_CLIENT_CAPABILITY = -32021;
/** An HTTP header disagrees with the body it came with (2026-07-28). */
export const HEADER_MISMATCH = -32020;

/**
 * What an `Mcp-Name` header must repeat of a request's body (SEP-2243): the tool or prompt name, the resource URI,
 * and for the tasks extension's methods the task id (SEP-2663). Undefined for a method that names nothing.
 */
export function namedInBody(method: string, params: Record<string, unknown> | undefined): unknown {
  if (method === 'tools/call' || method === 'prompts/get') return params?.name;
  if (method === 'tasks/get' || method === 'tasks/update' || method === 'tasks/cancel') return params?.taskId;
  return method === 'resources/read' ? params?.uri : undefined;
}

const BASE64_CANONICAL = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * A header value as SEP-2243 spells one an HTTP header cannot carry as it is: `=?base64?<UTF-8 in base64>?=`,
 * decoded; anything else as it is. Undefined when the base64 is not canonical.
 */
export function decodeHeaderValue(value: string): string | undefined {
  if (!(value.startsWith('=?base64?') && value.endsWith('?='))) return value;
  const b64 = value.slice('=?base64?'.length, -2);
  return BASE64_CANONICAL.test(b64) ? Buffer.from(b64, 'base64').toString('utf8') : undefined;
}

/** The modern envelope of a request, if it claims one: `{ protocolVersion, clientCapabilities, clientInfo? }`. */
export function readEnvelope(params: Record<string, unknown> | undefined):
  | { ok: true; protocolVersion: string; capabilities: Record<string, unknown>; clientInfo?: { name: string; version: string }; logLevel?: string }
  | { ok: false; problem: string }
  | undefined {
  const meta = params?._meta as Record<string, unknown> | undefined;
  if (!meta || typeof meta !== 'object' || !(ENVELOPE.protocolVersion in meta)) return undefined;
  const version = meta[ENVELOPE.protocolVersion];
  const capabilities = meta[ENVELOPE.clientCapabilities];
  if (typeof version !== 'string') return { ok: false, problem: `${ENVELOPE.protocolVersion}: expected a string` };
  if (!capabilities || typeof capabilities !== 'object') return { ok: false, problem: `${ENVELOPE.clientCapabilities}: required` };
  const info = meta[ENVELOPE.clientInfo] as { name?: unknown; version?: unknown } | undefined;
  if (info !== undefined && (typeof info?.name !== 'string' || typeof info?.version !== 'string')) {
    return { ok: false, problem: `${ENVELOPE.clientInfo}: expected { name, version }` };
  }
  const logLevel = meta[ENVELOPE.logLevel];
  return {
    ok: true,
    protocolVersion: version,
    capabilities: capabilities as Record<string, unknown>,
    ...(info ? { clientInfo: info as { name: string; version: string } } : {}),
    ...(typeof logLevel === 'string' ? { logLevel } : {}),
  };
}

export const isModernVersion = (version: string | undefined): boolean => version !== undefined && version >= MODERN_PROTOCOL_VERSION;

/** The client's `_meta` without what Gatehouse consumes (progress token, the era envelope). */
export function passThroughMeta(params: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const meta = params?._meta as Record<string, unknown> | undefined;
  if (!meta || typeof meta !== 'object') return undefined;
  const out: Record<string, unknown> = {};
  let any = false;
  for (const key of Object.keys(meta)) {
    if (key === 'progressToken' || key.startsWith('io.modelcontextprotocol/')) continue;
    out[key] = meta[key];
    any = true;
  }
  return any ? out : undefined;
}
