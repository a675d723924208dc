import { SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { JsonRpcRequest } from '../protocol/jsonrpc.ts';
import { parentContextOf, type TraceCarrier } from '../protocol/trace-context.ts';
import type { ClientSession } from './session.ts';

/** The server span of one MCP request, and the context its call's own spans start under. */
export interface RequestSpan {
  span: Span;
  context: Context;
}

/**
 * Starts the span of one MCP request as the OTel conventions for MCP name it: `{mcp.method.name} {target}`, the
 * target being the tool or prompt (never a resource URI, which would make names unbounded). Its parent is the
 * client's span, from `params._meta` first, then the HTTP headers. Attributes are built only for a recording span.
 */
export function startRequestSpan(tracer: Tracer, session: ClientSession, request: JsonRpcRequest, headers: TraceCarrier | undefined): RequestSpan {
  const params = request.params;
  const target = request.method === 'tools/call' || request.method === 'prompts/get' ? params?.name : undefined;
  const parent = parentContextOf(params?._meta as TraceCarrier | undefined, headers);
  const span = tracer.startSpan(typeof target === 'string' ? `${request.method} ${target}` : request.method, { kind: SpanKind.SERVER }, parent);
  if (span.isRecording()) {
    span.setAttributes({ 'mcp.method.name': request.method, 'jsonrpc.request.id': String(request.id), 'mcp.protocol.version': session.protocolVersion });
    if (session.caller.sessionId) span.setAttribute('mcp.session.id', session.caller.sessionId);
    if (request.method === 'tools/call' && typeof target === 'string') span.setAttributes({ 'gen_ai.tool.name': target, 'gen_ai.operation.name': 'execute_tool' });
    if (request.method === 'prompts/get' && typeof target === 'string') span.setAttribute('gen_ai.prompt.name', target);
    if (typeof params?.uri === 'string') span.setAttribute('mcp.resource.uri', params.uri);
  }
  return { span, context: trace.setSpan(parent, span) };
}

/**
 * Ends a request's span with what the client got: a JSON-RPC error or a tool result with `isError` is an error
 * (`error.type` the code, or `tool_error`, as the conventions say), a cancelled request is `cancelled`.
 */
export function endRequestSpan(span: Span, errorType: string | undefined, message?: string): void {
  if (errorType && span.isRecording()) {
    span.setAttribute('error.type', errorType);
    if (/^-?\d+$/.test(errorType)) span.setAttribute('rpc.response.status_code', errorType);
    span.setStatus({ code: SpanStatusCode.ERROR, ...(message ? { message } : {}) });
  }
  span.end();
}
