import type { CallLogFields } from '../log.ts';
import type { JobRequest } from '../protocol/cap.ts';

/**
 * A job's log fields, as the call's own (`callLogFields`): its id, the client session it carries in its labels,
 * and the trace id its packets travel under (the scheduler sends the job id there when the call had no trace).
 */
export function jobLogFields(job: Pick<JobRequest, 'jobId' | 'labels'>, traceId: string | undefined): CallLogFields {
  const sessionId = job.labels['mcp.session'];
  return { jobId: job.jobId, ...(sessionId ? { sessionId } : {}), ...(traceId && traceId !== job.jobId ? { traceId } : {}) };
}
