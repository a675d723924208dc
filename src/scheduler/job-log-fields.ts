import type { CallLogFields } from '../log.ts';
import type { JobRequest } from '../protocol/cap.ts';
import type { NormalizedCall } from '../protocol/call.ts';
import { trace } from '@opentelemetry/api';
import { traceIdOf, traceIdOfSpan } from '../protocol/trace-context.ts';

/**
 * A job's log fields, as the call's own (`callLogFields`): its id, the client session it carries in its labels,
 * and the trace id its packets travel under (the scheduler sends the job id there when the call had no trace).
 */
export function jobLogFields(job: Pick<JobRequest, 'jobId' | 'labels'>, traceId: string | undefined): CallLogFields {
  const sessionId = job.labels['mcp.session'];
  return { jobId: job.jobId, ...(sessionId ? { sessionId } : {}), ...(traceId && traceId !== job.jobId ? { traceId } : {}) };
}

/**
 * What every log line about a call carries: its job, the client session it came in on, and its trace (the request
 * span's, which is the client's own when tracing is off).
 */
export function callLogFields(call: Pick<NormalizedCall, 'caller' | 'meta' | 'reply'>, jobId: string): CallLogFields {
  const request = call.reply.trace && trace.getSpan(call.reply.trace);
  const traceId = (request && traceIdOfSpan(request)) ?? traceIdOf(call.meta?.traceparent);
  return { jobId, ...(call.caller.sessionId ? { sessionId: call.caller.sessionId } : {}), ...(traceId ? { traceId } : {}) };
}
