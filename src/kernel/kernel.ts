import type { CompiledPolicy } from './compile.ts';
import type { Decision, DecisionInput } from './decision.ts';
import { mergeConstraints, type Constraints } from './constraints.ts';
import { stricterEffect, type Effect } from './effect.ts';
import { compilePolicy } from './compile.ts';
import type { PolicyBundle } from './bundle.ts';

/**
 * The safety kernel. `decide` is the one decision function: calls, and tool listing (with `args` undefined),
 * both go through it, so what a caller sees listed and what it may call never disagree.
 */
export class Kernel {
  private policy: CompiledPolicy;

  constructor(bundle: PolicyBundle) {
    this.policy = compilePolicy(bundle);
  }

  get snapshot(): string {
    return this.policy.bundle.snapshot;
  }

  get bundle(): PolicyBundle {
    return this.policy.bundle;
  }

  /** Swaps in a new bundle atomically: a decision sees either the old policy or the new, never a mix. */
  replace(bundle: PolicyBundle): void {
    this.policy = compilePolicy(bundle);
  }

  decide(input: DecisionInput): Decision {
    const policy = this.policy;
    const matched = policy.candidatesFor(input.server, input.tool).filter((rule) => rule.matchesAnnotations(input.annotations));
    if (matched.length === 0) {
      const effect = policy.bundle.default;
      return {
        effect,
        reason: `no rule matched; the policy default is ${effect}`,
        ruleIds: [],
        policySnapshot: policy.bundle.snapshot,
        constraints: {},
      };
    }
    let effect: Effect = 'allow';
    let constraints: Constraints = {};
    for (const rule of matched) {
      effect = stricterEffect(effect, rule.effect);
      constraints = mergeConstraints(constraints, rule.constraints);
    }
    const deciding = matched.filter((r) => r.effect === effect);
    const reason = deciding.map((r) => r.reason).find((r) => r) ?? `rule ${deciding[0].id} (${effect})`;
    return {
      effect,
      reason,
      ruleIds: [...deciding, ...matched.filter((r) => r.effect !== effect)].map((r) => r.id),
      policySnapshot: policy.bundle.snapshot,
      constraints,
    };
  }

  /** A tool is listed unless the caller could never call it. */
  mayList(input: Omit<DecisionInput, 'args'>): boolean {
    return this.decide({ ...input, args: undefined }).effect !== 'deny';
  }
}
