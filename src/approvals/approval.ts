import type { ToolAnnotations } from '../protocol/mcp.ts';

export type ApprovalState = 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled' | 'consumed';

export interface ApprovalTransition {
  state: ApprovalState;
  at: number;
  actor: string;
  reason?: string;
}

/** Everything an approval is bound to. A retry matches only if all of it is identical. */
export interface ApprovalBinding {
  tenant: string;
  principal: string;
  server: string;
  tool: string;
  argsDigest: string;
  toolDigest: string;
  policySnapshot: string;
}

/** An approval, bound to one exact call. Any change to the call's binding makes it a different approval. */
export interface ApprovalRecord extends ApprovalBinding {
  id: string;
  state: ApprovalState;
  /** Digest of the binding: how a retry of the same call finds it. */
  bindingKey: string;
  jobId: string;
  ruleIds: string[];
  reason: string;
  annotations?: ToolAnnotations;
  /** A short, redacted rendering of the arguments for the human deciding. */
  argsPreview: string;
  createdAt: number;
  expiresAt: number;
  history: ApprovalTransition[];
  /** When a caller was told of the expiry: an expiry is reported once, then the next identical call asks anew. */
  expiryReportedAt?: number;
}

/** Which states may follow which: `pending → approved | denied | expired | cancelled`, then `approved → consumed`. */
export const APPROVAL_TRANSITIONS: Record<ApprovalState, readonly ApprovalState[]> = {
  pending: ['approved', 'denied', 'expired', 'cancelled'],
  approved: ['consumed', 'expired'],
  denied: [],
  expired: [],
  cancelled: [],
  consumed: [],
};
