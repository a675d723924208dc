import type { CallObservation, CallOutcomeKind, Metrics } from '../ports.ts';
import type { CallOutcome } from '../protocol/call.ts';
import type { ApprovalRecord } from '../protocol/approval-record.ts';

/** Codes that say Gatehouse or the upstream could not serve the call, as opposed to refusing it. */
const FAILED = new Set(['GH_ERR_UPSTREAM_ERROR', 'GH_ERR_UPSTREAM_TIMEOUT', 'GH_ERR_UPSTREAM_UNAVAILABLE', 'GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE', 'GH_ERR_AUDIT_UNAVAILABLE', 'GH_ERR_KERNEL_UNAVAILABLE', 'GH_ERR_BUS_UNAVAILABLE', 'GH_ERR_STATE_UNAVAILABLE', 'GH_ERR_NO_WORKER', 'GH_ERR_EXECUTION_IN_DOUBT', 'GH_ERR_INTERNAL', 'GH_ERR_CANCELLED']);

/**
 * What one call's metrics gather on its way through the pipeline, reported once when it ends. Made only when
 * metrics are on: with them off the call path reads no clock for them.
 */
export class CallTiming {
  decision = 'none';
  upstream = '_unknown';
  tool = '_unknown';
  private readonly startedAt = performance.now();
  private upstreamMs = 0;
  private approvalMs = 0;

  constructor(private readonly metrics: Metrics) {}

  decided(effect: string, since: number): void {
    this.decision = effect;
    this.metrics.decided((performance.now() - since) / 1000);
  }

  gated(since: number, approval: ApprovalRecord | undefined): void {
    this.approvalMs += performance.now() - since;
    const granted = approval?.history.find((t) => t.state === 'approved');
    if (approval && granted) this.metrics.approvalWaited(Math.max(0, granted.at - approval.createdAt) / 1000);
  }

  dispatched(since: number): void {
    this.upstreamMs += performance.now() - since;
  }

  ended(outcome: CallOutcome): void {
    const observation: CallObservation = {
      decision: this.decision,
      upstream: this.upstream,
      tool: this.tool,
      outcome: outcomeKind(outcome),
      seconds: (performance.now() - this.startedAt) / 1000,
      upstreamSeconds: this.upstreamMs / 1000,
      approvalSeconds: this.approvalMs / 1000,
    };
    this.metrics.callEnded(observation);
  }
}

export function outcomeKind(outcome: CallOutcome): CallOutcomeKind {
  if ('error' in outcome && outcome.error) return 'rpc_error';
  if (!('result' in outcome)) return 'pending';
  if (!outcome.result.isError) return 'ok';
  const code = (outcome.result._meta?.['gatehouse/error'] as { code?: string } | undefined)?.code;
  if (code === undefined) return 'tool_error';
  if (code === 'GH_ERR_APPROVAL_PENDING') return 'pending';
  return FAILED.has(code) ? 'failed' : 'refused';
}
