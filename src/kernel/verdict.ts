import type { Decision, DecisionInput, Explanation } from './decision.ts';
import type { Effect } from './effect.ts';
import type { Kernel } from './kernel.ts';
import { constrainsArguments, enforceArguments } from '../enforcement/call-arguments.ts';
import { asGatewayError, type ErrorCode } from '../errors.ts';

/** A constraint on the arguments that refuses the call as asked: it could never run, approved or not. */
export interface ConstraintRefusal {
  /** GH_ERR_PATH_DENIED, GH_ERR_EGRESS_DENIED, GH_ERR_ARGS_TOO_LARGE (GH_ERR_INVALID_ARGUMENTS: too deep to check). */
  code: ErrorCode;
  message: string;
  /** The rule whose constraint refused (absent for maxArgBytes, which merges to one limit). */
  ruleId?: string;
  /** Where in the arguments the refused value is (`path`, `files.1`); absent for the upstream's own URL and size. */
  argument?: string;
}

/**
 * What becomes of a call before anything stateful (approvals, throttles, quotas) is consulted: the kernel's
 * decision, and the refusal of a constraint on its arguments when one refuses it. A refused call is denied
 * whatever the decision's effect, so nobody is asked to approve a call that could not run.
 */
export interface Verdict {
  decision: Decision;
  /** The decision's effect, or `deny` when a constraint refuses the call. */
  effect: Effect;
  /** Why a denied call is denied: GH_ERR_POLICY_DENIED by the decision, or the refusing constraint's code. */
  code?: ErrorCode;
  refusal?: ConstraintRefusal;
}

/**
 * The one verdict function: the live gateway, `policy explain` (CLI and HTTP), `policy test` and `policy replay`
 * all turn a decision into a verdict here, over the same input (the call plus the tool facts of the catalog:
 * annotations, risk tags, labels, and the upstream's URL for egress). The checks are the executor's own
 * (enforcement/call-arguments.ts), which still runs them before dispatch. A decision that constrains no argument
 * costs nothing more.
 */
export function verdictOf(input: DecisionInput, decision: Decision): Verdict {
  if (decision.effect === 'deny') return { decision, effect: 'deny', code: 'GH_ERR_POLICY_DENIED' };
  if (input.args === undefined || !constrainsArguments(decision.constraints)) return { decision, effect: decision.effect };
  try {
    enforceArguments(input.args, decision.constraints, { name: input.server, ...(input.upstreamUrl ? { url: input.upstreamUrl } : {}) });
    return { decision, effect: decision.effect };
  } catch (err) {
    // Whatever the checks throw, the executor would throw too: the call is refused (fail closed).
    const error = asGatewayError(err);
    const { ruleId, argument } = (error.data ?? {}) as { ruleId?: unknown; argument?: unknown };
    const refusal: ConstraintRefusal = {
      code: error.code,
      message: error.message,
      ...(typeof ruleId === 'string' ? { ruleId } : {}),
      ...(typeof argument === 'string' ? { argument } : {}),
    };
    return { decision, effect: 'deny', code: refusal.code, refusal };
  }
}

/** `explain` with its verdict: every rule tried, the decision, and what the constraint check made of the call. */
export function explainCall(kernel: Pick<Kernel, 'explain'>, input: DecisionInput): { explanation: Explanation; verdict: Verdict } {
  const explanation = kernel.explain(input);
  return { explanation, verdict: verdictOf(input, explanation.decision) };
}
