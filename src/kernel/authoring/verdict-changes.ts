import type { Effect } from '../effect.ts';
import type { ErrorCode } from '../../errors.ts';
import { sameRuleIds } from './explanation.ts';

const EXAMPLES = 3;

export interface ReplayExample {
  jobId: string | undefined;
  tenant: string;
  tool: string;
  at: number;
}

/**
 * Recorded verdicts that another policy changes the same way: from one effect (and denial code) to another, by the
 * same rules. A call a constraint refused counts as `deny` with the constraint's code.
 */
export interface ReplayGroup {
  from: Effect;
  to: Effect;
  /** Why the recorded call was denied: GH_ERR_POLICY_DENIED, or the constraint's code. */
  fromCode?: ErrorCode;
  /** Why the other policy denies it. */
  toCode?: ErrorCode;
  /** The other policy's deciding rules (empty: its default applied); for a constraint's refusal, the refusing rule. */
  ruleIds: readonly string[];
  count: number;
  examples: ReplayExample[];
}

/** A verdict as replay and shadow compare it: the effect, and the code of a denial. */
export interface Outcome {
  effect: Effect;
  code?: ErrorCode;
}

export interface VerdictChangeSummary {
  unchanged: number;
  /** Decisions whose verdict changes: its effect, or the code it is denied with. */
  changed: number;
  /** Decisions whose effect stays but whose matching rules differ. */
  sameEffectDifferentRules: number;
  /** Most frequent first. */
  groups: ReplayGroup[];
  ruleGroups: ReplayGroup[];
}

/** Tallies how another policy's verdicts (a replayed draft's, a shadow's) differ from the recorded ones. */
export class VerdictChanges {
  private unchanged = 0;
  private changed = 0;
  private sameEffectDifferentRules = 0;
  private readonly groups = new Map<string, ReplayGroup>();
  private readonly ruleGroups = new Map<string, ReplayGroup>();

  /** `deciding`: the other policy's rules to group a changed verdict by (its deciding rules, or the refusing one). */
  add(recorded: Outcome & { ruleIds: readonly string[] }, other: Outcome & { ruleIds: readonly string[] }, deciding: readonly string[], example: ReplayExample): void {
    if (other.effect !== recorded.effect || other.code !== recorded.code) {
      this.changed++;
      addTo(this.groups, recorded, other, deciding, example);
    } else if (!sameRuleIds(other.ruleIds, recorded.ruleIds)) {
      this.sameEffectDifferentRules++;
      addTo(this.ruleGroups, other, other, other.ruleIds, example);
    } else {
      this.unchanged++;
    }
  }

  summary(): VerdictChangeSummary {
    const { unchanged, changed, sameEffectDifferentRules } = this;
    return { unchanged, changed, sameEffectDifferentRules, groups: byCount(this.groups), ruleGroups: byCount(this.ruleGroups) };
  }
}

function addTo(groups: Map<string, ReplayGroup>, from: Outcome, to: Outcome, ruleIds: readonly string[], example: ReplayExample): void {
  const key = JSON.stringify([from.effect, from.code, to.effect, to.code, ruleIds]);
  let group = groups.get(key);
  if (!group) {
    group = { from: from.effect, to: to.effect, ...(from.code ? { fromCode: from.code } : {}), ...(to.code ? { toCode: to.code } : {}), ruleIds, count: 0, examples: [] };
    groups.set(key, group);
  }
  group.count++;
  if (group.examples.length < EXAMPLES) group.examples.push(example);
}

const byCount = (groups: Map<string, ReplayGroup>): ReplayGroup[] =>
  [...groups.values()].sort(
    (a, b) => b.count - a.count || a.from.localeCompare(b.from) || a.to.localeCompare(b.to) || a.ruleIds.join(',').localeCompare(b.ruleIds.join(',')),
  );
