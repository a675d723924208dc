import type { ApprovalRecord, ApprovalState } from '../protocol/approval-record.ts';
import type { ApprovalService } from '../approvals/service.ts';
import { argsSummaryOf } from '../approvals/preview.ts';
import { prefilledCondition } from '../approvals/grant.ts';
import { asGatewayError, GatewayError } from '../errors.ts';
import { hasRole, type Approver } from './access.ts';

export type Decision = 'approve' | 'deny';

/** What an approver may do through the approval service: look, and decide. */
export type ApprovalDesk = Pick<ApprovalService, 'list' | 'get' | 'approve' | 'deny' | 'approveWithGrant' | 'approveWithEdit' | 'grants'>;

/** The HTTP status of each refusal an approver can meet; anything else is a 500. */
const STATUS_BY_CODE: Record<string, number> = {
  GH_ERR_INVALID_REQUEST: 400,
  GH_ERR_UNAUTHORIZED: 401,
  GH_ERR_FORBIDDEN: 403,
  GH_ERR_CSRF: 403,
  GH_ERR_APPROVER_NOT_ALLOWED: 403,
  GH_ERR_SELF_APPROVAL_FORBIDDEN: 403,
  GH_ERR_APPROVAL_NOT_FOUND: 404,
  GH_ERR_JOB_NOT_FOUND: 404,
  GH_ERR_PIN_NOT_FOUND: 404,
  GH_ERR_PIN_NOT_CHANGED: 409,
  GH_ERR_PIN_STALE: 409,
  GH_ERR_NOT_IMPLEMENTED: 501,
  GH_ERR_APPROVAL_EXPIRED: 409,
  GH_ERR_APPROVAL_INVALID_STATE: 409,
  GH_ERR_GRANT_INVALID: 400,
  GH_ERR_APPROVAL_EDIT_INVALID: 400,
  GH_ERR_GRANT_NOT_FOUND: 404,
};

export const MAX_REASON_CHARS = 1000;

export function statusOf(error: GatewayError): number {
  return STATUS_BY_CODE[error.code] ?? 500;
}

/**
 * What the API and the pages do on an approver's behalf, with the same checks: the approval must be in the
 * approver's tenant (403 otherwise), and the service has the last word (approvers, self-approval, quorum).
 */
export class ApproverActions {
  constructor(private readonly approvals: ApprovalDesk) {}

  async list(approver: Approver, state: ApprovalState | 'all' = 'pending'): Promise<ApprovalRecord[]> {
    const records = await this.approvals.list(state === 'all' ? undefined : state);
    return records.filter((r) => r.tenant === approver.tenant).sort((a, b) => b.createdAt - a.createdAt);
  }

  async get(approver: Approver, id: string): Promise<ApprovalRecord> {
    const record = await this.approvals.get(id);
    if (!record) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `no approval ${id}`);
    if (record.tenant !== approver.tenant) throw new GatewayError('GH_ERR_FORBIDDEN', `approval ${id} belongs to another tenant`);
    return record;
  }

  async decide(approver: Approver, id: string, decision: Decision, reason: unknown): Promise<ApprovalRecord> {
    return this.deciding(approver, id, reason, (text) => (decision === 'approve' ? this.approvals.approve(id, approver.principal, text) : this.approvals.deny(id, approver.principal, text)));
  }

  /** Approves and grants "this and matching calls" (`grant`: condition, scope, durationMs), with the checks of `decide`. */
  approveWithGrant(approver: Approver, id: string, grant: unknown, reason: unknown): Promise<{ approval: ApprovalRecord; grant: ApprovalRecord }> {
    return this.deciding(approver, id, reason, (text) => this.approvals.approveWithGrant(id, approver.principal, grant, text));
  }

  /** Approves with some arguments changed (see `ApprovalService.approveWithEdit`), with the checks of `decide`. */
  approveWithEdit(approver: Approver, id: string, changes: unknown, reason: unknown): Promise<ApprovalRecord> {
    return this.deciding(approver, id, reason, (text) => this.approvals.approveWithEdit(id, approver.principal, changes, text));
  }

  /** The role, the reason and the tenant checked, then the service's own checks: every refusal a coded error. */
  private async deciding<T>(approver: Approver, id: string, reason: unknown, run: (text: string | undefined) => Promise<T>): Promise<T> {
    const text = this.mayDecide(approver, reason);
    await this.get(approver, id);
    try {
      return await run(text);
    } catch (err) {
      throw asGatewayError(err);
    }
  }

  /** The grants of the approver's tenant, newest first; `live`: only those still in force. */
  async grants(approver: Approver, which: 'live' | 'all'): Promise<ApprovalRecord[]> {
    const grants = await this.approvals.grants.list(approver.tenant);
    return which === 'all' ? grants : grants.filter((g) => g.state === 'approved');
  }

  async revokeGrant(approver: Approver, id: string): Promise<ApprovalRecord> {
    this.mayDecide(approver, undefined);
    return this.approvals.grants.revoke(id, approver.principal, approver.tenant);
  }

  /** Deciding (and granting, and revoking) takes the approver role; returns the checked reason. */
  private mayDecide(approver: Approver, reason: unknown): string | undefined {
    if (!hasRole(approver.role, 'approver')) throw new GatewayError('GH_ERR_FORBIDDEN', `${approver.principal} may look at approvals but not decide them: that takes the approver role`);
    return readReason(reason);
  }
}

/** A reason is optional free text, stored and shown to others (escaped), so it is bounded. */
function readReason(reason: unknown): string | undefined {
  if (reason === undefined || reason === null) return undefined;
  if (typeof reason !== 'string') throw new GatewayError('GH_ERR_INVALID_REQUEST', 'reason must be a string');
  const text = reason.trim();
  if (text.length > MAX_REASON_CHARS) throw new GatewayError('GH_ERR_INVALID_REQUEST', `reason must be at most ${MAX_REASON_CHARS} characters`);
  return text || undefined;
}

/**
 * An approval as the API lists it: the record without internals, times in ISO 8601, its page, and a one-line
 * summary of its redacted arguments.
 */
export function approvalView(record: ApprovalRecord, pageUrl: string | undefined): Record<string, unknown> {
  const extra = record as Partial<{ quorum: number; votes: { actor: string; at: number; reason?: string }[]; approvers: string[] }>;
  return {
    id: record.id,
    state: record.state,
    tenant: record.tenant,
    principal: record.principal,
    server: record.server,
    tool: record.tool,
    reason: record.reason,
    ruleIds: record.ruleIds,
    argsSummary: argsSummaryOf(record),
    argsPreview: record.argsPreview,
    ...(record.annotations ? { annotations: record.annotations } : {}),
    createdAt: iso(record.createdAt),
    expiresAt: iso(record.expiresAt),
    ...(extra.quorum !== undefined ? { quorum: extra.quorum } : {}),
    ...(extra.approvers ? { approvers: extra.approvers } : {}),
    ...(extra.votes ? { votes: extra.votes.map((v) => ({ ...v, at: iso(v.at) })) } : {}),
    history: record.history.map((t) => ({ state: t.state, at: iso(t.at), actor: t.actor, ...(t.reason ? { reason: t.reason } : {}) })),
    ...(pageUrl ? { url: pageUrl } : {}),
  };
}

/** One approval as the API shows it: the list's view, and the whole redacted arguments (see `argsCut` when over the bound). */
export function approvalDetailView(record: ApprovalRecord, pageUrl: string | undefined): Record<string, unknown> {
  return {
    ...approvalView(record, pageUrl),
    ...(record.redactedArgs ? { redactedArgs: record.redactedArgs } : {}),
    ...(record.argsCut ? { argsCut: record.argsCut } : {}),
    ...(record.edit ? { edit: { by: record.edit.by, at: iso(record.edit.at), changes: record.edit.changes, changesDigest: record.edit.changesDigest } } : {}),
    ...(record.state === 'pending' ? { grantCondition: prefilledCondition(record.redactedArgs) } : {}),
  };
}

/** A grant as the API lists it: what it lets through, for whom, until when, and who gave it. */
export function grantView(record: ApprovalRecord): Record<string, unknown> {
  return {
    id: record.id,
    state: record.state === 'approved' ? 'live' : record.state === 'cancelled' ? 'revoked' : record.state,
    tenant: record.tenant,
    principal: record.principal,
    server: record.server,
    tool: record.tool,
    toolDigest: record.toolDigest,
    condition: record.grant?.condition,
    scope: record.grant?.scope,
    ...(record.grant?.sessionId ? { sessionId: record.grant.sessionId } : {}),
    approvalId: record.grant?.approvalId,
    grantedBy: record.grant?.grantedBy,
    ruleIds: record.ruleIds,
    createdAt: iso(record.createdAt),
    expiresAt: iso(record.expiresAt),
    history: record.history.map((t) => ({ state: t.state, at: iso(t.at), actor: t.actor, ...(t.reason ? { reason: t.reason } : {}) })),
  };
}

const iso = (ms: number) => new Date(ms).toISOString();
