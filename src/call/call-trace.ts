import { SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { Decision } from '../kernel/decision.ts';
import type { CallOutcome } from '../protocol/call.ts';
import { parentContextOf, traceHeadersOf, type TraceCarrier } from '../protocol/trace-context.ts';

/**
 * The spans of one governed call, under its request's span (`reply.trace`): the decision, the approval wait and the
 * dispatch, each a child of the request, and the decision's facts on both. With the no-op tracer every span is the
 * request's parent itself (the client's span, or none), and nothing here builds attributes.
 */
export class CallTrace {
  private readonly parent: Context;
  /** The request's server span, which the call's outcome and decision are told to. */
  private readonly request: Span | undefined;

  /** `meta`: the call's `_meta`, whose traceparent a call nobody made through a front (run on approval, a DLQ retry) continues. */
  constructor(
    private readonly tracer: Tracer,
    parent: Context | undefined,
    meta: TraceCarrier | undefined,
  ) {
    this.parent = parent ?? parentContextOf(meta);
    this.request = trace.getSpan(this.parent);
  }

  /** The traceparent of the call's request span, which the audit's `job.submitted` keeps. */
  get traceparent(): string | undefined {
    return this.request && traceHeadersOf(this.request).traceparent;
  }

  child(name: string, kind: SpanKind = SpanKind.INTERNAL): Span {
    return this.tracer.startSpan(name, { kind }, this.parent);
  }

  /** Runs a stage in a child span, ended with what `failure` reads of its outcome (a throw is GH_ERR_INTERNAL). */
  async stage<T>(name: string, run: (span: Span) => Promise<T>, failure: (outcome: T) => Failure | undefined): Promise<T> {
    const span = this.child(name);
    let ended: Failure | undefined = { type: 'GH_ERR_INTERNAL' };
    try {
      const outcome = await run(span);
      ended = failure(outcome);
      return outcome;
    } finally {
      endStage(span, ended);
    }
  }

  /** The decision's effect, rule ids and policy snapshot, on the decision's span and the request's. */
  decided(span: Span, jobId: string, decision: Decision): void {
    if (!span.isRecording() && !this.request?.isRecording()) return;
    const attributes = { 'gatehouse.job.id': jobId, 'gatehouse.decision.effect': decision.effect, 'gatehouse.decision.rule_ids': [...decision.ruleIds], 'gatehouse.policy.snapshot': decision.policySnapshot };
    span.setAttributes(attributes);
    this.request?.setAttributes(attributes);
  }
}

/** What a span records of a failed stage: `error.type` and the status message. */
export interface Failure {
  type: string;
  message?: string;
}

/** Ends a stage's span; an error (a thrown one, or a tool result with `isError`) sets its status and `error.type`. */
export function endStage(span: Span, failure?: Failure): void {
  if (failure && span.isRecording()) {
    span.setAttribute('error.type', failure.type);
    span.setStatus({ code: SpanStatusCode.ERROR, ...(failure.message ? { message: failure.message } : {}) });
  }
  span.end();
}

/** What failed in a call's outcome, as a span records it: the GH_ERR_* code of an error result, or the JSON-RPC code. */
export function failureOf(outcome: CallOutcome): Failure | undefined {
  if ('error' in outcome && outcome.error) return { type: String(outcome.error.code), message: outcome.error.message };
  if (!('result' in outcome) || !outcome.result.isError) return undefined;
  const code = (outcome.result._meta?.['gatehouse/error'] as { code?: unknown } | undefined)?.code;
  return { type: typeof code === 'string' ? code : 'tool_error' };
}
