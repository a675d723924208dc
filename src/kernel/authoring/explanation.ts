import type { Explanation } from '../decision.ts';

/** The matching rules whose effect is the decision's: the ones that decided it. */
export function decidingRules({ decision, rules }: Explanation): string[] {
  const effects = new Map(rules.map((r) => [r.id, r.effect]));
  return decision.ruleIds.filter((id) => effects.get(id) === decision.effect);
}

/** Rule ids compare as sets: the order a decision lists them in carries no meaning beyond the strictest first. */
export function sameRuleIds(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((id) => right.has(id));
}
