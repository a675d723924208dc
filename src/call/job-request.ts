import type { DecisionInput } from '../kernel/decision.ts';
import { impliedRiskTags } from '../kernel/hints.ts';
import { contextPtr, JobPriority, type JobRequest } from '../protocol/cap.ts';
import type { NormalizedCall } from '../protocol/call.ts';
import { IDEMPOTENT_LABEL, isIdempotentTool } from '../scheduler/idempotency.ts';
import type { CatalogEntry } from './catalog.ts';

/**
 * The CAP job of one call, built once, before the kernel decides on it: the topic `mcp.<upstream>.<tool>`, the
 * caller, the labels the scheduler routes and dead-letters by, and the metadata a CAP peer reads (the capability is
 * what policies match: `<upstream>__<tool>`, or `<method> <target>` for a resource or prompt request). The decision
 * adds the budget.
 */
export function jobRequestOf(jobId: string, call: NormalizedCall, entry: CatalogEntry): JobRequest {
  const { principal, tenant, sessionId } = call.caller;
  return {
    jobId,
    topic: `mcp.${entry.server}.${entry.tool.name}`,
    priority: JobPriority.INTERACTIVE,
    contextPtr: contextPtr(jobId),
    env: {},
    tenantId: tenant,
    principalId: principal,
    labels: {
      'mcp.server': entry.server,
      'mcp.tool': entry.tool.name,
      ...(sessionId ? { 'mcp.session': sessionId } : {}),
      ...(isIdempotent(entry) ? { [IDEMPOTENT_LABEL]: 'true' } : {}),
    },
    meta: { tenantId: tenant, actorId: principal, actorType: 'user', capability: entry.id, riskTags: riskTags(entry), requires: [], labels: {} },
  };
}

/**
 * What the kernel decides a job on: the job (who, which upstream, which capability), the tool facts of the catalog
 * (annotations, risk tags, labels, an HTTP upstream's URL), the arguments and the time. Plain JSON, so that the
 * decision's record can be replayed.
 */
export function decisionInputOf(job: JobRequest, entry: CatalogEntry, args: Record<string, unknown>, now: number): DecisionInput {
  const { facts, request } = entry;
  // Keys in JCS order: job.decided records this input as it is, where one out of order is sorted and copied.
  const input: DecisionInput = { annotations: facts.annotations, args, labels: facts.labels, now, principal: job.principalId, riskTags: facts.riskTags, server: job.labels['mcp.server'], tenant: job.tenantId, tool: job.meta.capability };
  if (facts.upstreamUrl) input.upstreamUrl = facts.upstreamUrl;
  if (facts.definitionChanged) input.definitionChanged = facts.definitionChanged;
  if (request) Object.assign(input, { kind: request.kind, method: request.method, [request.kind === 'resource' ? 'uri' : 'prompt']: request.target });
  return input;
}

/** Whether a job of this tool may run again if delivered twice: an idempotent tool's, or a resource or prompt read. */
export const isIdempotent = (entry: CatalogEntry): boolean => entry.request !== undefined || isIdempotentTool(entry.facts.annotations);

/** The job's risk tags: those the tool's annotations imply, read as the kernel reads them, plus the declared ones. */
function riskTags(entry: CatalogEntry): string[] {
  if (entry.request) return [];
  const implied = impliedRiskTags(entry.facts.annotations);
  return entry.facts.riskTags.length === 0 ? implied : [...new Set([...implied, ...entry.facts.riskTags])];
}
