import type { Decision, DecisionInput } from './decision.ts';

/**
 * A tool whose definition changed since it was pinned, on an upstream with `onDefinitionChange: approve`, is
 * callable only with a human's approval: whatever the rules allow becomes `require_approval`, with the change as the
 * reason the approver reads. A deny stays a deny. Applied inside the kernel, so the live call, `policy explain`,
 * `policy test` and a replay of the recorded input all see the same verdict.
 */
export function heldForChange(input: DecisionInput, decision: Decision): Decision {
  const change = input.definitionChanged;
  if (!change || decision.effect === 'deny' || input.kind) return decision;
  const what = change.fields.length > 0 ? `its ${change.fields.join(', ')} ${change.fields.length === 1 ? 'differs' : 'differ'}` : 'it differs from the digest a pack pinned';
  const why = `the definition of ${input.tool} changed since it was pinned (${what}; ${change.current} now, ${change.pinned} pinned): each call needs a human's approval until an operator accepts the change (gatehouse tools diff ${input.tool}, or GET /api/tools/pins/${input.tool})`;
  return { ...decision, effect: 'require_approval', reason: decision.effect === 'require_approval' ? `${decision.reason}; and ${why}` : why };
}
