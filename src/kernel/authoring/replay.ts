import type { AuditRecord } from '../../protocol/audit-record.ts';
import { REDACTED } from '../../enforcement/redact.ts';
import type { DecisionInput } from '../decision.ts';
import { EFFECTS, type Effect } from '../effect.ts';
import type { Kernel } from '../kernel.ts';
import { explainCall } from '../verdict.ts';
import type { ErrorCode } from '../../errors.ts';
import { decidingRules } from './explanation.ts';
import { VerdictChanges, type Outcome, type VerdictChangeSummary } from './verdict-changes.ts';
import type { ShadowVerdict } from '../shadow.ts';

export type { ReplayExample, ReplayGroup } from './verdict-changes.ts';

export interface ReplayReport extends VerdictChangeSummary {
  /** The draft's snapshot. */
  policySnapshot: string;
  /** `job.decided` records in the window. */
  decisions: number;
  replayed: number;
  /** Decisions recorded without their input (older records) or arguments (`audit.recordArguments: digest`): not replayable. */
  skipped: number;
  /** Replayed decisions whose recorded arguments hold redacted values, which a condition may read differently. */
  redacted: number;
}

export interface ReplayOptions {
  /** Only decisions recorded at or after this time (ms since the epoch). */
  since?: number;
}

/**
 * Re-decides recorded `job.decided` events under a draft bundle, through the verdict function the live gateway
 * uses, and groups the ones that change. The recorded input carries the tool facts the gateway decided on and
 * the decision time, so time conditions see the original `now`; the arguments are as recorded, that is, redacted.
 */
export async function replayDecisions(
  records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>,
  draft: Kernel,
  options: ReplayOptions = {},
): Promise<ReplayReport> {
  const report = { policySnapshot: draft.snapshot, decisions: 0, replayed: 0, skipped: 0, redacted: 0 };
  const changes = new VerdictChanges();
  for await (const record of records) {
    if (record.type !== 'job.decided' || (options.since !== undefined && record.at < options.since)) continue;
    report.decisions++;
    const input = recordedInput(record);
    const recorded = recordedDecision(record);
    if (!input || !recorded) {
      report.skipped++;
      continue;
    }
    report.replayed++;
    if (hasRedacted(input.args)) report.redacted++;
    // The same verdict function as the live gateway's, on the facts it recorded with the decision.
    const { explanation, verdict } = explainCall(draft, { ...input, now: input.now ?? record.at });
    const { ruleIds } = explanation.decision;
    const deciding = verdict.refusal ? (verdict.refusal.ruleId ? [verdict.refusal.ruleId] : []) : decidingRules(explanation);
    changes.add(recorded, { effect: verdict.effect, code: verdict.code, ruleIds }, deciding, { jobId: record.jobId, tenant: record.tenant, tool: input.tool, at: record.at });
  }
  return { ...report, ...changes.summary() };
}

/** An effect as a replay report shows it, with the code of a denial that is not the policy's own (a constraint's). */
export const replayOutcome = (effect: string, code: string | undefined): string => (code && code !== 'GH_ERR_POLICY_DENIED' ? `${effect} (${code})` : effect);

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isEffect = (value: unknown): value is Effect => (EFFECTS as readonly unknown[]).includes(value);

/** The input a `job.decided` record carries, when it carries one that can be decided on. */
function recordedInput(record: AuditRecord): DecisionInput | undefined {
  const input = record.data.input;
  if (!isObject(input) || typeof input.tool !== 'string' || typeof input.server !== 'string') return undefined;
  if (typeof input.tenant !== 'string' || typeof input.principal !== 'string') return undefined;
  // Recorded without its arguments (audit.recordArguments: digest): a condition on args could not be re-decided.
  if (!isObject(input.args)) return undefined;
  return input as unknown as DecisionInput;
}

/** The recorded verdict: the decision's effect, or `deny` with the constraint's code when one refused the call. */
export function recordedDecision(record: AuditRecord): (Outcome & { ruleIds: string[] }) | undefined {
  const { effect, ruleIds, refusal } = record.data;
  if (!isEffect(effect)) return undefined;
  const ids = Array.isArray(ruleIds) ? ruleIds.filter((id): id is string => typeof id === 'string') : [];
  const refused = isObject(refusal) && typeof refusal.code === 'string' ? (refusal.code as ErrorCode) : undefined;
  if (refused) return { effect: 'deny', code: refused, ruleIds: ids };
  return { effect, ...(effect === 'deny' ? { code: 'GH_ERR_POLICY_DENIED' as const } : {}), ruleIds: ids };
}

/** A `job.decided` record's `data.shadow`: the shadows' verdicts (shadow.ts), or none. */
export function recordedShadows(record: AuditRecord): ShadowVerdict[] {
  const shadow = record.data.shadow;
  return Array.isArray(shadow) ? shadow.filter((s): s is ShadowVerdict => isObject(s) && typeof s.policy === 'string' && isEffect(s.effect) && Array.isArray(s.ruleIds)) : [];
}

/** Whether the arguments hold a value (or, for a pattern, part of a string) the gateway redacted before recording them. */
function hasRedacted(value: unknown): boolean {
  if (typeof value === 'string') return value.includes(REDACTED);
  if (Array.isArray(value)) return value.some(hasRedacted);
  if (isObject(value)) return Object.values(value).some(hasRedacted);
  return false;
}
