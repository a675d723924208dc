import type { DecisionInput } from './decision.ts';
import type { PolicyBundle } from './bundle.ts';
import type { Effect } from './effect.ts';
import type { Kernel } from './kernel.ts';
import { verdictOf } from './verdict.ts';
import type { ErrorCode } from '../errors.ts';

/**
 * Which shadow decided: `rules` is the enforced bundle with its `enforce: false` rules enforced, `draft` the bundle of
 * the config's `shadowPolicies`.
 */
export type ShadowName = 'rules' | 'draft';

/** A shadow's verdict on one call, as `job.decided` records it beside the real one (`data.shadow`). */
export interface ShadowVerdict {
  policy: ShadowName;
  snapshot: string;
  effect: Effect;
  /** Why it would deny: GH_ERR_POLICY_DENIED, or the refusing constraint's code. */
  code?: ErrorCode;
  /** Every rule that matched, strictest first (as the enforced decision records its own). */
  ruleIds: readonly string[];
  /** The rules that decided: the matching ones whose effect is the verdict's, or the constraint's rule that refused. */
  deciding: string[];
  /** The shadow could not decide (a bug, or a condition that threw outside CEL's own handling); the call went on. */
  error?: string;
}

/**
 * Policies decided on every call beside the enforced one, never changing its outcome: a rule written
 * `enforce: false`, and a whole draft bundle (`shadowPolicies`). Each goes through the verdict function the call
 * itself went through, on the same input, so `gatehouse policy shadow` compares like with like. This is
 * `policy replay`, run live: a draft is tried on the traffic as it comes, arguments unredacted.
 */
export class ShadowPolicies {
  constructor(
    private readonly enforced: Kernel,
    /** The `shadowPolicies` bundle; its reloader swaps its bundle in place. */
    readonly draft?: Kernel,
  ) {}

  /** Whether a shadow's condition reads `session`: the call's session facts are then loaded for it too. */
  get readsSession(): boolean {
    return Boolean(this.enforced.rehearsal?.readsSession || this.draft?.readsSession);
  }

  /** The shadows' verdicts on a call, or undefined when there are none (the common case costs one check). */
  decide(input: DecisionInput): ShadowVerdict[] | undefined {
    const rehearsal = this.enforced.rehearsal;
    if (!rehearsal && !this.draft) return undefined;
    const verdicts: ShadowVerdict[] = [];
    if (rehearsal) verdicts.push(shadowVerdict('rules', rehearsal, input));
    if (this.draft) verdicts.push(shadowVerdict('draft', this.draft, input));
    return verdicts;
  }
}

function shadowVerdict(policy: ShadowName, kernel: Kernel, input: DecisionInput): ShadowVerdict {
  const snapshot = kernel.snapshot;
  try {
    const verdict = verdictOf(input, kernel.decide(input));
    const { ruleIds, effect } = verdict.decision;
    const effects = effectsOf(kernel.bundle);
    const deciding = verdict.refusal ? (verdict.refusal.ruleId ? [verdict.refusal.ruleId] : []) : ruleIds.filter((id) => effects.get(id) === effect);
    return { policy, snapshot, effect: verdict.effect, ...(verdict.code ? { code: verdict.code } : {}), ruleIds, deciding };
  } catch (err) {
    return { policy, snapshot, effect: 'deny', ruleIds: [], deciding: [], error: String((err as Error)?.message ?? err).slice(0, 200) };
  }
}

const ruleEffects = new WeakMap<PolicyBundle, Map<string, Effect>>();

/** Each rule's effect by id, once per bundle. */
function effectsOf(bundle: PolicyBundle): Map<string, Effect> {
  let effects = ruleEffects.get(bundle);
  if (!effects) ruleEffects.set(bundle, (effects = new Map(bundle.rules.map((rule) => [rule.id, rule.effect]))));
  return effects;
}
