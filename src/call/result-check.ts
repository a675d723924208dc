import type { Logger } from '../log.ts';
import type { AuditTrail } from '../audit/trail.ts';
import type { Decision, LabelSpec } from '../kernel/decision.ts';
import type { CallToolResult } from '../protocol/mcp.ts';
import type { SessionLabel } from '../protocol/session-record.ts';
import { asGatewayError, GatewayError } from '../errors.ts';
import { errorResult } from '../protocol/tool-results.ts';
import { SessionTracker, type TrackedCall } from '../session/session-tracker.ts';
import { applyScan, labelsOf, scanResult, type ResultFinding } from './result-scan.ts';

/** The risk tag that marks a tool whose results are not scanned (config `upstreams.<name>.riskTags`, or the policy's `tools:`). */
export const TRUSTED_TAG = 'trusted';

/** The audit record of a scan that found something (the findings' kinds, rules and places; never a secret). */
export const RESULT_SCANNED = 'job.result_scanned';

const MAX_RECORDED = 50;

export interface ResultCheckDeps {
  audit: Pick<AuditTrail, 'record'>;
  log: Logger;
  sessions: SessionTracker | undefined;
}

/** One call's result, as its decision and its session see it. */
export interface CheckedCall {
  jobId: string;
  tenant: string;
  decision: Decision;
  tracked: TrackedCall | undefined;
  /** The tool's risk tags (after config and the policy's overrides). */
  riskTags: readonly string[];
  now: number;
}

/** The rule labels a decision sets at a moment of its call, as the session keeps them. */
export function labelsAt(decision: Decision, on: LabelSpec['on'], jobId: string, now: number): SessionLabel[] {
  return (decision.labels ?? []).filter((l) => l.on === on).map((l) => ({ name: l.name, jobId, by: l.ruleId, at: now }));
}

/**
 * What happens to a result before it leaves Gatehouse: the scanner (when a matching rule turns it on and the tool
 * is not trusted) looks for injection and credentials, its findings are audited and redacted or marked as the rule
 * says, and the session gets the scanner's labels and the rules' `labelResult` ones. Fails closed: a result whose
 * labels cannot be stored is not handed on, since the next call's decision would not know what it carried.
 */
export async function checkResult(deps: ResultCheckDeps, call: CheckedCall, result: CallToolResult): Promise<CallToolResult> {
  const { decision, jobId, now } = call;
  const labels = result.isError ? [] : labelsAt(decision, 'result', jobId, now);
  let out = result;
  const mode = decision.scanResult;
  if (mode && !call.riskTags.includes(TRUSTED_TAG)) {
    const findings = scanResult(result);
    if (findings.length > 0) {
      const set = labelsOf(findings);
      for (const name of set) labels.push({ name, jobId, by: 'scanner', at: now });
      deps.audit.record({ tenant: call.tenant, at: now, type: RESULT_SCANNED, actor: 'scanner', jobId, data: { ruleId: decision.scanRuleId, mode, labels: set, findings: findings.slice(0, MAX_RECORDED).map(recorded), ...(findings.length > MAX_RECORDED ? { more: findings.length - MAX_RECORDED } : {}) } });
      out = applyScan(result, findings, mode);
    }
  }
  if (labels.length === 0 || !call.tracked || !deps.sessions) return out;
  try {
    await deps.sessions.label(call.tracked, labels, now);
    return out;
  } catch (err) {
    const error = asGatewayError(err);
    deps.log.error("could not label the session with what the result carried; withholding it (fail closed)", { jobId, code: error.code, error: error.message });
    const failed = new GatewayError(error.code, `The call ran, but its session could not be labelled with what its result carries, so the result is withheld: ${error.message}`);
    return errorResult(failed.code, failed.message, { 'gatehouse/job': { jobId } });
  }
}

const MAX_SOURCES_SHOWN = 10;

/**
 * A require_approval decision's reason with the session's labels and where each came from: the approval page, the
 * API and the model's pending answer show it ("private-data set by job 01J… (rule files/private)").
 */
export function withLabelSources(reason: string, labels: readonly SessionLabel[]): string {
  const shown = labels.slice(0, MAX_SOURCES_SHOWN).map((l) => `${l.name} set by job ${l.jobId} (${l.by === 'scanner' ? 'the result scanner' : `rule ${l.by}`})`);
  const more = labels.length > MAX_SOURCES_SHOWN ? `, and ${labels.length - MAX_SOURCES_SHOWN} more` : '';
  return `${reason.replace(/[.\s]+$/, '')}. Session labels: ${shown.join('; ')}${more}`;
}

/** A finding as the audit keeps it: bounded, no secret. */
function recorded(f: ResultFinding): Record<string, unknown> {
  return { kind: f.kind, rule: f.rule, at: f.at, span: f.span, ...(f.excerpt ? { excerpt: f.excerpt } : {}) };
}

/**
 * Whether Gatehouse does something with this call's result once it comes back: cuts, redacts or times it
 * (constraints), scans or labels it, counts it against a budget, or adds an edit's note. Such a call is answered
 * whole: a task's result would reach the client later, through tasks/get, past all of that.
 */
export function resultIsWatched(decision: Decision, tracked: boolean, edited: boolean): boolean {
  const { timeoutMs, maxOutputBytes, redact } = decision.constraints;
  return edited || timeoutMs !== undefined || maxOutputBytes !== undefined || (redact?.result.length ?? 0) > 0 || Boolean(decision.scanResult || decision.labels) || (tracked && SessionTracker.countsResults(decision));
}
