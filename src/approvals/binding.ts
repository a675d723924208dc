import { digestOf } from '../protocol/digest.ts';

/** Who asks for what: the part of a call that finds its approval again when the call is retried. */
export interface CallIdentity {
  tenant: string;
  principal: string;
  server: string;
  tool: string;
  argsDigest: string;
}

/** Everything an approval is bound to: the call, the pinned tool definition and the policy it was asked under. */
export interface ApprovalBinding extends CallIdentity {
  toolDigest: string;
  policySnapshot: string;
}

/** Why an approval may not be used for a call. */
export interface BindingRefusal {
  code: 'GH_ERR_APPROVAL_MISMATCH' | 'GH_ERR_APPROVAL_STALE';
  reason: string;
}

/**
 * The key a retry finds its approval by. The tool digest and the policy snapshot are left out on purpose: a
 * policy edit must not orphan an approval (the call is decided again, and the approval counts while the new
 * policy still asks for one), and a changed tool must be refused with a reason rather than silently asked anew.
 */
export function bindingKeyOf(call: CallIdentity): string {
  return digestOf({ tenant: call.tenant, principal: call.principal, server: call.server, tool: call.tool, argsDigest: call.argsDigest });
}

/**
 * Whether an approval may be used for this call. Another caller, tenant, tool or other arguments:
 * GH_ERR_APPROVAL_MISMATCH. The same call but a changed tool definition: GH_ERR_APPROVAL_STALE. A different policy
 * snapshot is not a refusal: the caller has decided the call again under the current policy before asking.
 */
export function verifyBinding(approved: ApprovalBinding, call: ApprovalBinding): BindingRefusal | undefined {
  if (approved.tenant !== call.tenant || approved.principal !== call.principal) {
    return { code: 'GH_ERR_APPROVAL_MISMATCH', reason: `the approval was asked for by ${approved.principal} (tenant ${approved.tenant}), not ${call.principal} (tenant ${call.tenant})` };
  }
  if (approved.server !== call.server || approved.tool !== call.tool) {
    return { code: 'GH_ERR_APPROVAL_MISMATCH', reason: `the approval is for ${approved.tool}, not ${call.tool}` };
  }
  if (approved.argsDigest !== call.argsDigest) {
    return { code: 'GH_ERR_APPROVAL_MISMATCH', reason: 'the arguments differ from the ones that were approved' };
  }
  if (approved.toolDigest !== call.toolDigest) {
    return { code: 'GH_ERR_APPROVAL_STALE', reason: `the definition of ${call.tool} changed since the approval was asked for (${approved.toolDigest} then, ${call.toolDigest} now)` };
  }
  return undefined;
}
