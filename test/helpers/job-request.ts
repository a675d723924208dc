import { JobPriority, type JobRequest } from '../../src/protocol/cap.ts';

/** A CAP job for the fixture's `fx__write`, by alice in tenant t: what the scheduler tests send. */
export function writeJobRequest(jobId: string, extra: Partial<JobRequest> = {}): JobRequest {
  return {
    jobId,
    topic: 'mcp.fx.write',
    priority: JobPriority.INTERACTIVE,
    contextPtr: `ctx:${jobId}`,
    env: {},
    tenantId: 't',
    principalId: 'alice',
    labels: { 'mcp.server': 'fx', 'mcp.tool': 'write' },
    meta: { tenantId: 't', actorId: 'alice', actorType: 'user', capability: 'write', riskTags: [], requires: [], labels: {} },
    ...extra,
  };
}
