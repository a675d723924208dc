import type { ToolAnnotations } from '../protocol/mcp.ts';
import type { JobRequest } from '../protocol/cap.ts';
import { effectiveHint } from '../kernel/hints.ts';

/** The job label that says its tool may run again without harm: a read-only or idempotent tool. */
export const IDEMPOTENT_LABEL = 'mcp.idempotent';

/** Read-only tools change nothing, and idempotent ones change nothing more the second time. */
export const isIdempotentTool = (annotations: ToolAnnotations | undefined): boolean =>
  effectiveHint(annotations, 'readOnlyHint') === true || effectiveHint(annotations, 'idempotentHint') === true;

export const isIdempotentJob = (job: JobRequest): boolean => job.labels[IDEMPOTENT_LABEL] === 'true';

/**
 * The key an executor claims (SET NX) before running a round of a job. A second delivery of the same round (a
 * redelivery after a worker died, a retry) finds it taken: an idempotent job runs again, any other ends in doubt and
 * never runs twice. Each round of a call whose upstream asks for input (`JobRequest.stepIndex`, 0 for the first) has
 * a claim of its own, and none is ever given up: a late delivery of round k cannot pass for round k+1.
 */
export const claimKey = (jobId: string, round = 0): string => (round === 0 ? `claim:${jobId}` : `claim:${jobId}:${round}`);
