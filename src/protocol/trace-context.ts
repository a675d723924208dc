import { createTraceState, isSpanContextValid, ROOT_CONTEXT, trace, type Context, type Span, type SpanContext } from '@opentelemetry/api';

/**
 * W3C trace context as MCP carries it: `traceparent` and `tracestate` in a request's `params._meta` (what the OTel
 * conventions for MCP recommend), or in HTTP headers of the same names. Parsed here rather than by an SDK propagator,
 * so that reading and passing on a client's trace costs nothing of the SDK when tracing is off.
 */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Where a trace context may be read from: a `_meta` object or a set of headers, with these two keys. */
export interface TraceCarrier {
  traceparent?: unknown;
  tracestate?: unknown;
}

/** The remote span a carrier names, when its traceparent is well formed (version ff and all-zero ids are not). */
export function spanContextOf(carrier: TraceCarrier | undefined): SpanContext | undefined {
  if (typeof carrier?.traceparent !== 'string') return undefined;
  const match = TRACEPARENT.exec(carrier.traceparent.trim());
  if (!match || match[1] === 'ff') return undefined;
  const state = typeof carrier.tracestate === 'string' && carrier.tracestate.trim() ? createTraceState(carrier.tracestate.trim()) : undefined;
  const spanContext: SpanContext = { traceId: match[2], spanId: match[3], traceFlags: parseInt(match[4], 16) & 1, isRemote: true, ...(state ? { traceState: state } : {}) };
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

/** The context a request's span starts under: the first carrier that names a span, else none (a new trace). */
export function parentContextOf(...carriers: (TraceCarrier | undefined)[]): Context {
  for (const carrier of carriers) {
    const parent = spanContextOf(carrier);
    if (parent) return trace.setSpanContext(ROOT_CONTEXT, parent);
  }
  return ROOT_CONTEXT;
}

/** The trace id of a W3C traceparent, if the value is one. */
export function traceIdOf(traceparent: unknown): string | undefined {
  return spanContextOf({ traceparent })?.traceId;
}

/** The trace id a span belongs to, or undefined for the invalid span a no-op tracer makes without a parent. */
export function traceIdOfSpan(span: Span): string | undefined {
  const spanContext = span.spanContext();
  return isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}

/** `traceparent` (and `tracestate`) naming `span`; empty for an invalid span, so no trace is made up. */
export function traceHeadersOf(span: Span): { traceparent?: string; tracestate?: string } {
  const { traceId, spanId, traceFlags, traceState } = span.spanContext();
  if (!isSpanContextValid(span.spanContext())) return {};
  const state = traceState?.serialize();
  return { traceparent: `00-${traceId}-${spanId}-0${(traceFlags & 1).toString(16)}`, ...(state ? { tracestate: state } : {}) };
}

/**
 * `meta` with the trace context of `span` in place of the one it came with. With tracing off, a span started under
 * a client's traceparent is that client's span itself, so the upstream gets exactly what the client sent; without
 * one, `meta` is returned as it is.
 */
export function withTraceContext(meta: Record<string, unknown> | undefined, span: Span): Record<string, unknown> | undefined {
  const headers = traceHeadersOf(span);
  if (!headers.traceparent) return meta;
  const { tracestate: _dropped, ...rest } = meta ?? {};
  return { ...rest, ...headers };
}
