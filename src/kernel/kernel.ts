import { compilePolicy, type CompiledPolicy, type RequestTarget } from './compile.ts';
import type { Decision, DecisionInput, Explanation } from './decision.ts';
import type { PolicyBundle } from './bundle.ts';
import { CallFacts, requestTarget, Tally, testRule, traceOf } from './evaluation.ts';
import { heldForChange } from './definition-change.ts';

/**
 * The safety kernel. `decide` is the one decision function: calls, and tool listing (with `args` undefined),
 * both go through it, so what a caller sees listed and what it may call never disagree. It is pure: the same
 * input and snapshot give the same decision (the time comes from `input.now`, the epoch when absent).
 */
export class Kernel {
  private policy: CompiledPolicy;
  private unenforced: Kernel | undefined;

  constructor(bundle: PolicyBundle) {
    this.policy = compilePolicy(enforcedPart(bundle));
    this.unenforced = rehearsalOf(bundle);
  }

  /**
   * The bundle as it would decide with its `enforce: false` rules enforced, when it has any: what shadow.ts records
   * beside every decision. Those rules are left out of this kernel's own decisions.
   */
  get rehearsal(): Kernel | undefined {
    return this.unenforced;
  }

  get snapshot(): string {
    return this.policy.bundle.snapshot;
  }

  get bundle(): PolicyBundle {
    return this.policy.bundle;
  }

  /** Whether any call could need a human's approval under this bundle (a rule or the default says so). */
  get mayRequireApproval(): boolean {
    const { bundle } = this.policy;
    return bundle.default === 'require_approval' || bundle.rules.some((rule) => rule.effect === 'require_approval');
  }

  /** Whether a rule's condition reads `session`: the call's session facts must then be in its input. */
  get readsSession(): boolean {
    return this.policy.readsSession;
  }

  /**
   * Whether a rule that can apply to this call (its server and tool, or its request's kind and target) reads
   * `session`: only then must its session facts be loaded before it is decided.
   */
  readsSessionFor(server: string, tool: string, request?: RequestTarget): boolean {
    return this.policy.readsSession && this.policy.planFor(server, tool, request).readsSession;
  }

  /** Whether the policy needs session state at all (a rule reads `session`, or has a `repeat` or `budget`). */
  get usesSession(): boolean {
    return this.policy.usesSession;
  }

  /** Swaps in a new bundle atomically: compiled fully first, so a decision sees the old policy or the new, never a mix. */
  replace(bundle: PolicyBundle): void {
    const policy = compilePolicy(enforcedPart(bundle));
    const unenforced = rehearsalOf(bundle);
    this.policy = policy;
    this.unenforced = unenforced;
  }

  /**
   * Every rule that can apply to the tool is tested; the strictest matching effect wins (deny > require_approval
   * > throttle > allow_with_constraints > allow) and constraints merge from all matching rules. No match: the
   * bundle's default. A tool whose definition changed, held for approval by its upstream, needs one whatever
   * the rules allow (definition-change.ts).
   */
  decide(input: DecisionInput): Decision {
    const policy = this.policy;
    const plan = policy.planFor(input.server, input.tool, requestTarget(input));
    const facts = new CallFacts(input, plan);
    const tally = new Tally(plan.decisions);
    const rules = plan.rules;
    for (let i = 0; i < rules.length; i++) tally.count(rules[i], testRule(rules[i], facts, false), facts, i);
    const decision = tally.decision(policy);
    return input.definitionChanged ? heldForChange(input, decision) : decision;
  }

  /** The call's risk tags as the rules see them: the config's, the bundle's overrides', and those its annotations imply. */
  riskTagsOf(input: DecisionInput): readonly string[] {
    return new CallFacts(input, this.policy.planFor(input.server, input.tool, requestTarget(input))).riskTags;
  }

  /** Every rule of the bundle, in id order, with whether and why it matched; the decision is `decide`'s. */
  explain(input: DecisionInput): Explanation {
    const policy = this.policy;
    const facts = new CallFacts(input, policy.planFor(input.server, input.tool, requestTarget(input)));
    const tally = new Tally();
    const rules = policy.rules.map((rule) => {
      const outcome = testRule(rule, facts, true);
      tally.count(rule, outcome, facts);
      return traceOf(rule, outcome, facts);
    });
    return { decision: heldForChange(input, tally.decision(policy)), rules };
  }

  /**
   * A tool (a resource, a resource template, a prompt) is listed unless the caller could never call (read, get) it. Without arguments or a time of call, a condition that
   * reads `args` or `now` is assumed to go the caller's way: a deny rule's does not match, any other's does.
   */
  mayList(input: Omit<DecisionInput, 'args'>): boolean {
    return this.decide({ ...input, args: undefined }).effect !== 'deny';
  }
}

/** The bundle without its `enforce: false` rules (its snapshot still covers them: they are part of what was written). */
function enforcedPart(bundle: PolicyBundle): PolicyBundle {
  return bundle.rules.some((rule) => rule.enforce === false) ? { ...bundle, rules: bundle.rules.filter((rule) => rule.enforce !== false) } : bundle;
}

/** A kernel over the bundle with every rule enforced, when some rule is not. */
function rehearsalOf(bundle: PolicyBundle): Kernel | undefined {
  if (!bundle.rules.some((rule) => rule.enforce === false)) return undefined;
  return new Kernel({ ...bundle, rules: bundle.rules.map(({ enforce: _shadowOnly, ...rule }) => rule) });
}
