import type { AuditRecord } from '../audit/record.ts';
import { REDACTED } from '../enforcement/redact.ts';
import type { DecisionInput } from '../kernel/decision.ts';
import { EFFECTS, type Effect } from '../kernel/effect.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { decidingRules, sameRuleIds } from './explanation.ts';

const EXAMPLES = 3;

export interface ReplayExample {
  jobId: string | undefined;
  tenant: string;
  tool: string;
  at: number;
}

/** Recorded decisions that the draft changes the same way: from one effect to another, by the same draft rules. */
export interface ReplayGroup {
  from: Effect;
  to: Effect;
  /** The draft's deciding rules (empty: its default applied). */
  ruleIds: string[];
  count: number;
  examples: ReplayExample[];
}

export interface ReplayReport {
  /** The draft's snapshot. */
  policySnapshot: string;
  /** `job.decided` records in the window. */
  decisions: number;
  replayed: number;
  /** Decisions recorded without their input (older records) or arguments (`audit.recordArguments: false`): not replayable. */
  skipped: number;
  unchanged: number;
  /** Decisions whose effect changes. */
  changed: number;
  /** Decisions whose effect stays but whose matching rules differ. */
  sameEffectDifferentRules: number;
  /** Most frequent first. */
  groups: ReplayGroup[];
  ruleGroups: ReplayGroup[];
  /** Replayed decisions whose recorded arguments hold redacted values, which a condition may read differently. */
  redacted: number;
}

export interface ReplayOptions {
  /** Only decisions recorded at or after this time (ms since the epoch). */
  since?: number;
}

/**
 * Re-decides recorded `job.decided` events under a draft bundle and groups the ones that change. The recorded
 * input carries the decision time, so time conditions see the original `now`; the arguments are as recorded,
 * that is, redacted.
 */
export async function replayDecisions(
  records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>,
  draft: Kernel,
  options: ReplayOptions = {},
): Promise<ReplayReport> {
  const report: ReplayReport = {
    policySnapshot: draft.snapshot,
    decisions: 0,
    replayed: 0,
    skipped: 0,
    unchanged: 0,
    changed: 0,
    sameEffectDifferentRules: 0,
    groups: [],
    ruleGroups: [],
    redacted: 0,
  };
  const groups = new Map<string, ReplayGroup>();
  const ruleGroups = new Map<string, ReplayGroup>();
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
    const explanation = draft.explain({ ...input, now: input.now ?? record.at });
    const { effect, ruleIds } = explanation.decision;
    const example = { jobId: record.jobId, tenant: record.tenant, tool: input.tool, at: record.at };
    if (effect !== recorded.effect) {
      report.changed++;
      addTo(groups, recorded.effect, effect, decidingRules(explanation), example);
    } else if (!sameRuleIds(ruleIds, recorded.ruleIds)) {
      report.sameEffectDifferentRules++;
      addTo(ruleGroups, effect, effect, ruleIds, example);
    } else {
      report.unchanged++;
    }
  }
  report.groups = byCount(groups);
  report.ruleGroups = byCount(ruleGroups);
  return report;
}

function addTo(groups: Map<string, ReplayGroup>, from: Effect, to: Effect, ruleIds: string[], example: ReplayExample): void {
  const key = JSON.stringify([from, to, ruleIds]);
  let group = groups.get(key);
  if (!group) groups.set(key, (group = { from, to, ruleIds, count: 0, examples: [] }));
  group.count++;
  if (group.examples.length < EXAMPLES) group.examples.push(example);
}

const byCount = (groups: Map<string, ReplayGroup>): ReplayGroup[] =>
  [...groups.values()].sort(
    (a, b) => b.count - a.count || a.from.localeCompare(b.from) || a.to.localeCompare(b.to) || a.ruleIds.join(',').localeCompare(b.ruleIds.join(',')),
  );

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isEffect = (value: unknown): value is Effect => (EFFECTS as readonly unknown[]).includes(value);

/** The input a `job.decided` record carries, when it carries one that can be decided on. */
function recordedInput(record: AuditRecord): DecisionInput | undefined {
  const input = record.data.input;
  if (!isObject(input) || typeof input.tool !== 'string' || typeof input.server !== 'string') return undefined;
  if (typeof input.tenant !== 'string' || typeof input.principal !== 'string') return undefined;
  // Recorded without its arguments (audit.recordArguments: false): a condition on args could not be re-decided.
  if (!isObject(input.args)) return undefined;
  return input as unknown as DecisionInput;
}

function recordedDecision(record: AuditRecord): { effect: Effect; ruleIds: string[] } | undefined {
  const { effect, ruleIds } = record.data;
  if (!isEffect(effect)) return undefined;
  return { effect, ruleIds: Array.isArray(ruleIds) ? ruleIds.filter((id): id is string => typeof id === 'string') : [] };
}

/** Whether the arguments hold a value (or, for a pattern, part of a string) the gateway redacted before recording them. */
function hasRedacted(value: unknown): boolean {
  if (typeof value === 'string') return value.includes(REDACTED);
  if (Array.isArray(value)) return value.some(hasRedacted);
  if (isObject(value)) return Object.values(value).some(hasRedacted);
  return false;
}
