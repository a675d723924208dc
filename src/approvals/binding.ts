import type { ApprovalBinding } from '../protocol/approval-record.ts';

/** Why an approval may not be used for a call. */
export interface BindingRefusal {
  code: 'GH_ERR_APPROVAL_MISMATCH' | 'GH_ERR_APPROVAL_STALE';
  reason: string;
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
