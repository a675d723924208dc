import { GatewayError } from '../errors.ts';
import { JobStatus } from '../protocol/cap.ts';

/** The job state machine of ARCHITECTURE §3. APPROVAL_REQUIRED is Gatehouse's own; on the CAP wire it is PENDING. */
export type JobState = 'PENDING' | 'APPROVAL_REQUIRED' | 'SCHEDULED' | 'DISPATCHED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMEOUT' | 'DENIED' | 'CANCELLED';

const ORDER: Record<JobState, number> = {
  PENDING: 0,
  APPROVAL_REQUIRED: 1,
  SCHEDULED: 2,
  DISPATCHED: 3,
  RUNNING: 4,
  SUCCEEDED: 5,
  FAILED: 5,
  TIMEOUT: 5,
  DENIED: 5,
  CANCELLED: 5,
};

export const isTerminal = (state: JobState): boolean => ORDER[state] === 5;

/** Transitions only move forward; DENIED and CANCELLED may end any non-terminal state. */
export function assertTransition(jobId: string, from: JobState, to: JobState): void {
  const ok = !isTerminal(from) && (to === 'DENIED' || to === 'CANCELLED' || ORDER[to] > ORDER[from]);
  if (!ok) throw new GatewayError('GH_ERR_INTERNAL', `job ${jobId} cannot move from ${from} to ${to}`, { data: { jobId, from, to } });
}

export function stateOfStatus(status: JobStatus): JobState {
  switch (status) {
    case JobStatus.SUCCEEDED:
      return 'SUCCEEDED';
    case JobStatus.TIMEOUT:
      return 'TIMEOUT';
    case JobStatus.CANCELLED:
      return 'CANCELLED';
    case JobStatus.DENIED:
      return 'DENIED';
    case JobStatus.RUNNING:
      return 'RUNNING';
    case JobStatus.DISPATCHED:
      return 'DISPATCHED';
    case JobStatus.SCHEDULED:
      return 'SCHEDULED';
    case JobStatus.PENDING:
      return 'PENDING';
    default:
      return 'FAILED';
  }
}
