import type { ApprovalStore, Clock } from '../ports.ts';
import type { AuditTrail } from '../audit/trail.ts';
import { ulid } from '../protocol/ulid.ts';
import { GatewayError } from '../errors.ts';
import { APPROVAL_RECORD_VERSION, type ApprovalBinding, type ApprovalGrant, type ApprovalRecord, type ApprovalTransition } from '../protocol/approval-record.ts';
import { grantKeyOf, grantMiss, type GrantedCall, type GrantRequest } from './grant.ts';
import type { ApproverGroups } from './policy.ts';

const SYSTEM_ACTOR = 'gatehouse';

type GrantRecord = ApprovalRecord & { grant: ApprovalGrant };

/**
 * Standing approvals ("this and matching calls"). They are kept in the ApprovalStore beside the approvals, so every
 * process on the data dir and every replica on the Redis sees one as soon as it is given or revoked, and the
 * store's atomic `update` settles a revoke racing an expiry. A grant is looked up by `grantKeyOf`, one index read.
 */
export class ApprovalGrants {
  constructor(
    private readonly store: ApprovalStore,
    private readonly audit: AuditTrail,
    private readonly clock: Clock,
    /** The approver groups as the config has them now (a grant's granter must still be among a rule's approvers). */
    private readonly groups: () => ApproverGroups,
  ) {}

  /** Records the grant an approver gave with an approval (already checked by `checkGrantRequest`). */
  async give(approval: ApprovalRecord, actor: string, request: GrantRequest): Promise<ApprovalRecord> {
    const now = this.clock.now();
    const grant: ApprovalGrant = {
      condition: request.condition,
      scope: request.scope,
      ...(request.scope === 'session' && approval.sessionId ? { sessionId: approval.sessionId } : {}),
      approvalId: approval.id,
      grantedBy: actor,
    };
    const record: GrantRecord = {
      version: APPROVAL_RECORD_VERSION,
      id: `grt_${ulid()}`,
      state: 'approved',
      tenant: approval.tenant,
      principal: approval.principal,
      server: approval.server,
      tool: approval.tool,
      argsDigest: approval.argsDigest,
      toolDigest: approval.toolDigest,
      policySnapshot: approval.policySnapshot,
      bindingKey: grantKeyOf(approval),
      jobId: approval.jobId,
      ruleIds: approval.ruleIds,
      reason: `granted with ${approval.id}: ${request.condition}`,
      argsPreview: request.condition,
      createdAt: now,
      expiresAt: now + request.durationMs,
      history: [{ state: 'approved', at: now, actor }],
      selfApprove: approval.selfApprove,
      quorum: 1,
      onApprove: 'wait_for_retry',
      votes: [{ actor, at: now }],
      grant,
    };
    await this.store.create(record);
    this.audit.record({
      tenant: record.tenant,
      at: now,
      type: 'approval.grant_created',
      actor,
      jobId: approval.jobId,
      data: { grantId: record.id, approvalId: approval.id, server: record.server, tool: record.tool, toolDigest: record.toolDigest, condition: grant.condition, scope: grant.scope, ...(grant.sessionId ? { sessionId: grant.sessionId } : {}), expiresAt: record.expiresAt },
    });
    return record;
  }

  /**
   * The live grant that lets this call through, audited as used by `jobId`; undefined when none does. A grant whose
   * tool definition changed is revoked on sight (GH_ERR_APPROVAL_STALE), as an approval would be.
   */
  async find(binding: ApprovalBinding, call: GrantedCall, jobId: string): Promise<ApprovalRecord | undefined> {
    const now = this.clock.now();
    for (const record of await this.store.list({ bindingKey: grantKeyOf(binding) })) {
      if (!isGrant(record) || record.state !== 'approved' || now >= record.expiresAt) continue;
      const miss = grantMiss(record, call, this.groups());
      if (miss === 'stale') {
        await this.end(record.id, SYSTEM_ACTOR, `the definition of ${record.tool} changed since the grant was given`, 'GH_ERR_APPROVAL_STALE').catch(() => undefined);
        continue;
      }
      if (miss) continue;
      this.audit.record({ tenant: record.tenant, at: now, type: 'approval.grant_used', actor: SYSTEM_ACTOR, jobId, data: { grantId: record.id, approvalId: record.grant.approvalId, argsDigest: binding.argsDigest } });
      return record;
    }
    return undefined;
  }

  /** Every grant of the tenant (or of all, without one), newest first; one past its expiry is shown expired. */
  async list(tenant?: string): Promise<ApprovalRecord[]> {
    const now = this.clock.now();
    const records = (await this.store.list(tenant ? { tenant } : {})).filter(isGrant);
    return records.map((r) => (r.state === 'approved' && now >= r.expiresAt ? { ...r, state: 'expired' as const } : r)).sort((a, b) => b.createdAt - a.createdAt);
  }

  /** Ends a live grant at once: calls after this one are asked about again. `tenant`: refuse another tenant's. */
  async revoke(id: string, actor: string, tenant?: string): Promise<ApprovalRecord> {
    const record = await this.store.get(id);
    if (!record || !isGrant(record) || (tenant !== undefined && record.tenant !== tenant)) throw new GatewayError('GH_ERR_GRANT_NOT_FOUND', `no grant ${id}`, { data: { grantId: id } });
    return this.end(id, actor, `revoked by ${actor}`);
  }

  private async end(id: string, actor: string, reason: string, code?: string): Promise<ApprovalRecord> {
    const now = this.clock.now();
    const updated = await this.store.update(id, (current) => {
      if (current.state !== 'approved' || now >= current.expiresAt) {
        throw new GatewayError('GH_ERR_APPROVAL_INVALID_STATE', `grant ${id} is no longer live (${current.state === 'approved' ? 'expired' : current.state})`, { data: { grantId: id, state: current.state } });
      }
      const entry: ApprovalTransition = { state: 'cancelled', at: now, actor, reason, ...(code ? { code } : {}) };
      return { ...current, state: 'cancelled', history: [...current.history, entry] };
    });
    this.audit.record({ tenant: updated.tenant, at: now, type: 'approval.grant_revoked', actor, jobId: updated.jobId, data: { grantId: id, reason, ...(code ? { code } : {}) } });
    return updated;
  }
}

export function isGrant(record: ApprovalRecord): record is GrantRecord {
  return record.grant !== undefined;
}
