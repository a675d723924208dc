/** The approval record as every ApprovalStore keeps it: its format, its binding key, and the upgrade of older records. */
import { digestOf } from './digest.ts';
import type { ToolAnnotations } from './mcp.ts';

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

/**
 * The key a retry finds its approval by. The tool digest and the policy snapshot are left out on purpose: a
 * policy edit must not orphan an approval (the call is decided again, and the approval counts while the new
 * policy still asks for one), and a changed tool must be refused with a reason rather than silently asked anew.
 */
export function bindingKeyOf(call: CallIdentity): string {
  return digestOf({ tenant: call.tenant, principal: call.principal, server: call.server, tool: call.tool, argsDigest: call.argsDigest });
}

/** Set when the redacted arguments were over MAX_KEPT_ARGS_BYTES (src/approvals/preview.ts). */
export interface ArgsCut {
  /** Their size, redacted, as JSON (bytes). */
  bytes: number;
  /** Every longer string was cut to this many characters (and ends in `…`); absent: not even that fitted, nothing is kept. */
  maxChars?: number;
}

export type ApprovalState = 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled' | 'consumed';

/** What happens once an approval is granted (a rule's `approval.onApprove`). */
export type OnApprove = 'wait_for_retry' | 'execute';

export interface ApprovalTransition {
  /** The state after this entry. A vote that does not yet meet the quorum leaves it `pending`. */
  state: ApprovalState;
  at: number;
  actor: string;
  reason?: string;
  /** Set on a vote toward the quorum. */
  vote?: 'approve';
  /** `link`: the actor acted through a notice's action link (approve and deny; the actor is `approvals.webhook.actAs`). */
  via?: 'link';
  /** Why the system moved it, as a catalogue code (a stale approval cancelled: GH_ERR_APPROVAL_STALE). */
  code?: string;
  /** On `consumed`: the job that used it and the policy snapshot that job was decided under. */
  jobId?: string;
  policySnapshot?: string;
}

/** One approver's yes. Distinct actors count toward the quorum; the same actor twice counts once. */
export interface ApprovalVote {
  actor: string;
  at: number;
  reason?: string;
}

/**
 * A call run by the gateway itself once approved (`onApprove: execute`), and its outcome, kept for the retry.
 * `resultRef` is a Store key; the executor writes the result there. Exactly one retry takes it (`takenBy`).
 */
export interface ApprovalExecution {
  jobId: string;
  startedAt: number;
  finishedAt?: number;
  resultRef?: string;
  error?: { code: string; message: string };
  takenBy?: string;
  takenAt?: number;
}

/** Whose calls a grant lets through: the one MCP session of the call approved, or every session of its principal. */
export type GrantScope = 'session' | 'principal';

/**
 * "This and matching calls": a record with `grant` is not an approval of one call but a standing yes, found by
 * `grantKeyOf` (src/approvals/grant.ts). It lives `approved` until it expires or is revoked (`cancelled`).
 */
export interface ApprovalGrant {
  /** A CEL condition on `args` (the approver saw it pre-filled from the call and may have edited it). */
  condition: string;
  scope: GrantScope;
  /** The MCP session it is bound to (`scope: session`). */
  sessionId?: string;
  /** The approval it was given with. */
  approvalId: string;
  grantedBy: string;
}

/**
 * An approver's edit of the arguments, approved with them: the call runs with its arguments, each top-level key of
 * `changes` set to the approver's value (checked against the tool's schema and decided again when it runs). A
 * patch rather than the whole arguments, so a value the approver saw redacted is never typed back in as `[redacted]`.
 */
export interface ApprovalEdit {
  changes: Record<string, unknown>;
  changesDigest: string;
  by: string;
  at: number;
}

/** The record format this version writes. Records without `version` were written by 0.1 and are upgraded on read. */
export const APPROVAL_RECORD_VERSION = 2;

/**
 * An approval, bound to one exact call. `bindingKey` (tenant, principal, server, tool, argsDigest) is how a retry
 * finds it; the tool digest and policy snapshot are kept and checked when it is used.
 */
export interface ApprovalRecord extends ApprovalBinding {
  version: typeof APPROVAL_RECORD_VERSION;
  id: string;
  state: ApprovalState;
  bindingKey: string;
  jobId: string;
  ruleIds: string[];
  reason: string;
  annotations?: ToolAnnotations;
  /** A short, redacted rendering of the arguments for the human deciding. */
  argsPreview: string;
  /** One line of the most telling argument values, redacted, for lists. Absent on older records. */
  argsSummary?: string;
  /**
   * The arguments as approvers see them: the policy's `redact.args` rules and secret-looking keys masked, never the
   * raw call. At most MAX_KEPT_ARGS_BYTES of JSON; `argsCut` says when they were over it. Absent on older records.
   */
  redactedArgs?: Record<string, unknown>;
  argsCut?: ArgsCut;
  /** Where the call's arguments are kept (a Store key), for a gateway that runs the call itself on approval. */
  argsRef?: string;
  createdAt: number;
  expiresAt: number;
  history: ApprovalTransition[];
  /** When a caller was told of the expiry: an expiry is reported once, then the next identical call asks anew. */
  expiryReportedAt?: number;
  /**
   * Who may approve or deny: principals and `group:<name>` entries. Absent: anyone who can reach an approval
   * channel. Empty: nobody (the matching rules named no approver in common); only the requester may withdraw.
   */
  approvers?: string[];
  /** The members of each group named in `approvers` when the approval was created, for processes without the config. */
  approverGroups?: Record<string, string[]>;
  /** Whether the requester may approve their own call. */
  selfApprove: boolean;
  /** How many distinct approvers must approve. */
  quorum: number;
  onApprove: OnApprove;
  votes: ApprovalVote[];
  /** Set when it was consumed: which job ran under which policy snapshot. */
  claimedBy?: { jobId: string; policySnapshot: string; at: number };
  execution?: ApprovalExecution;
  /** The caller's MCP session, when it had one: what a `scope: session` grant given with this approval binds to. */
  sessionId?: string;
  /** Set when the approver changed the arguments before approving. */
  edit?: ApprovalEdit;
  /** Set on a grant's record, never on an approval of one call. */
  grant?: ApprovalGrant;
}

/** Which states may follow which: `pending → approved | denied | expired | cancelled`, then `approved → consumed`. */
export const APPROVAL_TRANSITIONS: Record<ApprovalState, readonly ApprovalState[]> = {
  pending: ['approved', 'denied', 'expired', 'cancelled'],
  // cancelled: an approved call whose tool definition changed before it ran (GH_ERR_APPROVAL_STALE)
  approved: ['consumed', 'expired', 'cancelled'],
  denied: [],
  expired: [],
  cancelled: [],
  consumed: [],
};

/** A record as an older version may have stored it: the fields added since are missing. */
export type StoredApprovalRecord = Omit<ApprovalRecord, 'version' | 'selfApprove' | 'quorum' | 'onApprove' | 'votes'> &
  Partial<Pick<ApprovalRecord, 'version' | 'selfApprove' | 'quorum' | 'onApprove' | 'votes'>>;

/**
 * Brings a stored record to the current format. A 0.1 record keyed its binding on the tool digest and policy
 * snapshot as well; its key is recomputed so that a retry after the upgrade still finds it, and it gets the
 * options 0.1 applied (anyone may approve, the requester included, one approval, wait for the retry).
 */
export function upgradeApprovalRecord(stored: StoredApprovalRecord): ApprovalRecord {
  if (stored.version === APPROVAL_RECORD_VERSION) return stored as ApprovalRecord;
  const approvedBy = stored.history.filter((t) => t.state === 'approved');
  return {
    ...stored,
    version: APPROVAL_RECORD_VERSION,
    bindingKey: bindingKeyOf(stored),
    selfApprove: stored.selfApprove ?? true,
    quorum: stored.quorum ?? 1,
    onApprove: stored.onApprove ?? 'wait_for_retry',
    votes: stored.votes ?? approvedBy.map((t) => ({ actor: t.actor, at: t.at, ...(t.reason ? { reason: t.reason } : {}) })),
  };
}
