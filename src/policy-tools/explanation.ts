import type { Kernel } from '../kernel/kernel.ts';
import type { DecisionInput, Explanation, RuleTrace } from '../kernel/decision.ts';

/**
 * The kernel's explanation of one decision. A kernel without `explain` (the v1 kernel) is explained from its
 * decision: a rule matched when its id is among the decision's rule ids.
 */
export function explainCall(kernel: Kernel, input: DecisionInput): Explanation {
  const explaining = kernel as Kernel & { explain?: (input: DecisionInput) => Explanation };
  if (typeof explaining.explain === 'function') return explaining.explain(input);
  const decision = kernel.decide(input);
  const matched = new Set(decision.ruleIds);
  const rules = kernel.bundle.rules.map(
    (rule): RuleTrace => ({ id: rule.id, effect: rule.effect, matched: matched.has(rule.id), why: matched.has(rule.id) ? 'matched' : 'did not match' }),
  );
  return { decision, rules };
}

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
