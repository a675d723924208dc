import type { ApprovalQuery, ApprovalStore, Clock } from '../ports.ts';
import type { AuditTrail } from '../audit/trail.ts';
import type { CallLogFields, Logger } from '../log.ts';
import type { ToolAnnotations } from '../protocol/mcp.ts';
import type { ApprovalSpec } from '../kernel/decision.ts';
import { ulid } from '../protocol/ulid.ts';
import { GatewayError, isGatewayError } from '../errors.ts';
import {
  APPROVAL_RECORD_VERSION,
  APPROVAL_TRANSITIONS,
  bindingKeyOf,
  type ApprovalBinding,
  type ApprovalEdit,
  type ApprovalExecution,
  type ApprovalRecord,
  type ApprovalState,
  type ApprovalTransition,
} from '../protocol/approval-record.ts';
import { verifyBinding, type BindingRefusal } from './binding.ts';
import type { ApprovalArguments } from './preview.ts';
import { ApprovalGrants, isGrant } from './grants.ts';
import { checkGrantRequest } from './grant.ts';
import { checkEdit } from './edit.ts';
import { approvalPolicyOf, approverRefusal, groupMembers, type ApprovalPolicy, type ApproverGroups, type ApproverRefusal } from './policy.ts';

/** How long after an approval's expiry a wait capped by it wakes (see `waitUntil`). */
const EXPIRY_MARGIN_MS = 5;

export type { ApprovalBinding, BindingRefusal, ApproverRefusal };

export interface ApprovalRequestDetails extends Partial<ApprovalArguments> {
  jobId: string;
  ruleIds: readonly string[];
  reason: string;
  annotations?: ToolAnnotations;
  argsPreview: string;
  /** The approval options of the matching rules (`Decision.approvals`); merged by `approvalPolicyOf`. */
  specs?: readonly ApprovalSpec[];
  /** Where the call's arguments are kept (a Store key), for rules with `onApprove: execute`. */
  argsRef?: string;
  /** The caller's MCP session: what a session grant given with this approval binds to. */
  sessionId?: string;
  /** A live grant that covers this call, when it has no approval of its own (see `resolve`). */
  findGrant?: () => Promise<ApprovalRecord | undefined>;
  /** The call's log fields (job, session, trace) for lines about it; never stored in the approval. */
  logFields?: CallLogFields;
}

/** What the call path should do about an approval-gated call right now. */
export type ApprovalOutcome =
  /** The approval was claimed (consumed) for this call: run it. */
  | { kind: 'run'; approval: ApprovalRecord }
  /** No approval of its own, but a live grant covers it (`approval` is the grant's record): run it. */
  | { kind: 'granted'; approval: ApprovalRecord }
  /** The gateway ran the call on approval (`onApprove: execute`) and this retry took its outcome, once. */
  | { kind: 'result'; approval: ApprovalRecord; execution: ApprovalExecution }
  /** The gateway is running the call on approval right now: wait with `waitForResult`, or tell the caller to retry. */
  | { kind: 'executing'; approval: ApprovalRecord }
  | { kind: 'pending'; approval: ApprovalRecord; created: boolean }
  | { kind: 'denied'; approval: ApprovalRecord }
  | { kind: 'expired'; approval: ApprovalRecord }
  /** The tool's definition changed since the approval was asked for: refused, and the approval cancelled. */
  | { kind: 'stale'; approval: ApprovalRecord; code: 'GH_ERR_APPROVAL_STALE'; reason: string }
  /** `resume` only: the named approval is for another call (arguments, tool, caller or tenant). */
  | { kind: 'mismatch'; approval: ApprovalRecord; code: 'GH_ERR_APPROVAL_MISMATCH'; reason: string };

export interface ApprovalServiceOptions {
  /** Approver groups (config `approvals.groups`), read whenever someone approves or denies. */
  groups?: ApproverGroups;
  /** Where a rule set that nobody can satisfy is reported. */
  log?: Pick<Logger, 'warn'>;
}

/** How an approver acted, when not in person: `link`, a notice's action link (which acts as `approvals.webhook.actAs`). */
export type ActedBy = { via?: ApprovalTransition['via'] };

export interface WaitOptions {
  signal?: AbortSignal;
  tickMs?: number;
  onTick?: () => void;
}

const SYSTEM_ACTOR = 'gatehouse';

interface TransitionOptions {
  reason?: string;
  code?: string;
  /** The states it may leave (default: every state that may become `to`). */
  from?: readonly ApprovalState[];
  /** Fields to set along with the state (on the record, and the history entry). */
  fields?: (current: ApprovalRecord) => Partial<ApprovalRecord>;
  entry?: Partial<ApprovalTransition>;
  jobId?: string;
  data?: Record<string, unknown>;
  /** Throws to refuse, seeing the current record. */
  check?: (current: ApprovalRecord) => void;
}

/**
 * Approval lifecycle: creation bound to an exact call, human decisions (who may approve, quorum), expiry, and the
 * atomic single-use claim that lets an approved call run exactly once. Every transition is an audit event naming
 * its actor. Every change goes through the store's atomic `update`, so processes and replicas never lose one.
 */
export class ApprovalService {
  private readonly serial = new Map<string, Promise<unknown>>();
  /** Ends each wait in progress (`waitForSettled`, `waitForResult`). */
  private readonly waits = new Set<() => void>();
  private stopped = false;
  private groups: ApproverGroups;
  private readonly log: Pick<Logger, 'warn'> | undefined;
  /** Standing approvals ("this and matching calls"), in the same store. */
  readonly grants: ApprovalGrants;

  constructor(
    private readonly store: ApprovalStore,
    private readonly audit: AuditTrail,
    private readonly clock: Clock,
    private readonly ttlMs: number,
    options: ApprovalServiceOptions = {},
  ) {
    this.groups = options.groups ?? {};
    this.log = options.log;
    this.grants = new ApprovalGrants(store, audit, clock, () => this.groups);
  }

  /** Sets the approver groups after construction (a command that opened the data dir before reading the config). */
  useApproverGroups(groups: ApproverGroups): this {
    this.groups = groups;
    return this;
  }

  /**
   * Finds the approval for this call (same tenant, principal, server, tool and arguments) and says what to do:
   * run it (the approval was claimed for this call), wait (pending), take the result of the call the gateway ran
   * on approval, or refuse (denied, expired, stale). With no usable approval, a new pending one is created.
   * Decide the call under the current policy first: this counts a granted approval whatever snapshot it was
   * asked under, as long as the policy still asks for one. With no approval of its own to use, a live grant
   * (`details.findGrant`) lets it run.
   */
  resolve(binding: ApprovalBinding, details: ApprovalRequestDetails): Promise<ApprovalOutcome> {
    const key = bindingKeyOf(binding);
    // Identical concurrent calls in this process share one approval rather than racing to create two.
    const previous = this.serial.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.resolveSerially(key, binding, details));
    this.serial.set(key, next);
    void next.finally(() => {
      if (this.serial.get(key) === next) this.serial.delete(key);
    }).catch(() => undefined);
    return next;
  }

  /**
   * Like `resolve`, for a caller that names the approval (an MRTR retry's `requestState`, a wait tool): the
   * approval must be bound to this call (else `mismatch`). One already used or withdrawn falls back to `resolve`.
   */
  async resume(id: string, binding: ApprovalBinding, details: ApprovalRequestDetails): Promise<ApprovalOutcome> {
    const record = await this.get(id);
    if (!record) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `no approval ${id}`, { data: { approvalId: id } });
    const refusal = verifyBinding(record, binding);
    if (refusal?.code === 'GH_ERR_APPROVAL_MISMATCH') return { kind: 'mismatch', approval: record, code: refusal.code, reason: refusal.reason };
    return (await this.use(record, binding, details.jobId)) ?? this.resolve(binding, details);
  }

  /** How the rules' approval options combine for a call, with the approver groups as the config has them now. */
  policyOf(specs: readonly ApprovalSpec[] | undefined): ApprovalPolicy {
    return approvalPolicyOf(specs, this.groups);
  }

  /** Whether this approval may serve this call; see `verifyBinding`. */
  verifyBinding(approval: ApprovalRecord, binding: ApprovalBinding): BindingRefusal | undefined {
    return verifyBinding(approval, binding);
  }

  /** Whether `actor` may approve (or deny) it now, as `approve` and `deny` will check: for pages and forms. */
  mayAct(approval: ApprovalRecord, actor: string, action: 'approve' | 'deny' = 'approve'): ApproverRefusal | undefined {
    return approverRefusal(approval, actor, action, this.groups);
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const record = await this.store.get(id);
    return record && this.expireIfDue(record);
  }

  async list(query?: ApprovalState | ApprovalQuery): Promise<ApprovalRecord[]> {
    const q: ApprovalQuery = typeof query === 'string' ? { state: query } : (query ?? {});
    const { state, ...rest } = q;
    // Filter by state after expiring: a pending approval past its expiry is listed as expired.
    // Grants share the store; they are listed by `grants.list`, not as approvals.
    const records = await Promise.all((await this.store.list(rest)).filter((r) => !isGrant(r)).map((r) => this.expireIfDue(r)));
    return state ? records.filter((r) => r.state === state) : records;
  }

  /** Calls `listener` whenever an approval changes, in this process or another. Returns an unsubscribe. */
  watch(listener: (record: ApprovalRecord) => void): () => void {
    return this.store.watch(listener);
  }

  /**
   * One approver's yes. The actor must be allowed (`approvers`, `selfApprove`); a refusal throws
   * GH_ERR_APPROVER_NOT_ALLOWED or GH_ERR_SELF_APPROVAL_FORBIDDEN and is audited. The approval stays `pending`
   * until `quorum` distinct approvers said yes; the same approver twice counts once while it is pending. Once it
   * is decided, any approve or deny throws GH_ERR_APPROVAL_INVALID_STATE (HTTP 409), whoever sends it.
   * `by.via`: how the actor acted when it was not in person (an action link), kept in the history and the audit.
   */
  async approve(id: string, actor: string, reason?: string, by: ActedBy = {}, edit?: ApprovalEdit): Promise<ApprovalRecord> {
    await this.requireOpen(id);
    const now = this.clock.now();
    const outcome: { effect: 'vote' | 'approved' | 'repeat' } = { effect: 'repeat' };
    const updated = await this.guarded(id, actor, 'approve', by, () =>
      this.store.update(id, (current) => {
        outcome.effect = 'repeat';
        assertUndecided(current);
        if (current.votes.some((v) => v.actor === actor)) return current;
        this.assertCanLeave(current, 'approved', ['pending'], now);
        const refusal = approverRefusal(current, actor, 'approve', this.groups);
        if (refusal) throw refusalError(current, actor, refusal);
        const votes = [...current.votes, { actor, at: now, ...(reason ? { reason } : {}) }];
        outcome.effect = votes.length >= current.quorum ? 'approved' : 'vote';
        const state = outcome.effect === 'approved' ? 'approved' : 'pending';
        const entry: ApprovalTransition = { state, at: now, actor, ...(reason ? { reason } : {}), ...(outcome.effect === 'vote' ? { vote: 'approve' as const } : {}), ...by };
        return { ...current, state, votes, history: [...current.history, entry], ...(edit && state === 'approved' ? { edit } : {}) };
      }),
    );
    if (outcome.effect !== 'repeat') {
      this.audit.record({
        tenant: updated.tenant,
        at: now,
        type: outcome.effect === 'approved' ? 'approval.approved' : 'approval.vote',
        actor,
        jobId: updated.jobId,
        data: { approvalId: id, votes: updated.votes.map((v) => v.actor), quorum: updated.quorum, ...(reason ? { reason } : {}), ...by, ...(updated.edit ? { edited: { argsDigest: updated.argsDigest, changesDigest: updated.edit.changesDigest, changed: Object.keys(updated.edit.changes), by: updated.edit.by } } : {}) },
      });
    }
    return updated;
  }

  /**
   * Approves, and with the same yes grants "this and matching calls" (`request`: condition, scope, durationMs; see
   * grant.ts). The request is checked before anything is approved, so a refused grant (GH_ERR_GRANT_INVALID)
   * leaves the approval pending. Returns the approval and the grant.
   */
  async approveWithGrant(id: string, actor: string, request: unknown, reason?: string, by: ActedBy = {}): Promise<{ approval: ApprovalRecord; grant: ApprovalRecord }> {
    const checked = checkGrantRequest(request, await this.requireOpen(id));
    const approval = await this.approve(id, actor, reason, by);
    return { approval, grant: await this.grants.give(approval, actor, checked) };
  }

  /**
   * Approves the call with some arguments changed (`changes`, a JSON object of the top-level arguments to set): the
   * retry of the original call runs with them, once, if the tool's schema takes them and the policy, deciding
   * again, does not deny them. Refused with GH_ERR_APPROVAL_EDIT_INVALID before anything is approved (`checkEdit`).
   */
  async approveWithEdit(id: string, actor: string, changes: unknown, reason?: string, by: ActedBy = {}): Promise<ApprovalRecord> {
    const edit = checkEdit(changes, await this.requireOpen(id), actor, this.clock.now());
    return this.approve(id, actor, reason, by, edit);
  }

  /** A no from an allowed approver denies at once. The requester may always deny (withdraw) their own call. */
  async deny(id: string, actor: string, reason?: string, by: ActedBy = {}): Promise<ApprovalRecord> {
    await this.requireOpen(id);
    return this.guarded(id, actor, 'deny', by, () =>
      this.transition(id, 'denied', actor, {
        ...(reason ? { reason } : {}),
        from: ['pending'],
        entry: by,
        data: by,
        check: (current) => {
          assertUndecided(current);
          const refusal = approverRefusal(current, actor, 'deny', this.groups);
          if (refusal) throw refusalError(current, actor, refusal);
        },
      }),
    );
  }

  /** Withdraws a pending approval, for instance when the client cancelled the held call. `actor`: who cancelled. */
  async cancel(id: string, actor: string, reason: string): Promise<ApprovalRecord | undefined> {
    return this.transition(id, 'cancelled', actor, { reason, from: ['pending'] }).catch(() => undefined);
  }

  /** Notes that a caller was told of the expiry: the next identical call then asks for a new approval. */
  reportExpiry(id: string): Promise<ApprovalRecord> {
    return this.store.update(id, (r) => (r.expiryReportedAt === undefined ? { ...r, expiryReportedAt: this.clock.now() } : r));
  }

  /**
   * Atomically turns `approved` into `consumed` for the job that is about to run the call. Only one caller, in
   * any process, ever gets the record. `policySnapshot`: the snapshot the job was decided under (default: the
   * approval's own), recorded in `claimedBy`.
   */
  async claim(id: string, jobId: string, policySnapshot?: string): Promise<ApprovalRecord | undefined> {
    return this.claimWith(id, jobId, policySnapshot, false);
  }

  /**
   * `onApprove: execute`: the gateway takes an approved approval to run the call itself (`approved → consumed`,
   * `execution` started). Undefined if another job (a retry, or another replica) claimed it first: then that one
   * runs it. Follow with `recordExecution` once the call has run.
   */
  async claimForExecution(id: string, jobId: string, policySnapshot?: string): Promise<ApprovalRecord | undefined> {
    return this.claimWith(id, jobId, policySnapshot, true);
  }

  /**
   * Stores the outcome of a call run on approval: `resultRef` is the Store key its result was written to (keep it
   * at least until the approval's retention ends), or the error it failed with. One retry then takes it.
   */
  async recordExecution(id: string, outcome: { resultRef: string } | { error: { code: string; message: string } }): Promise<ApprovalRecord> {
    const now = this.clock.now();
    const updated = await this.store.update(id, (current) => {
      if (current.state !== 'consumed' || !current.execution || current.execution.finishedAt !== undefined) {
        throw new GatewayError('GH_ERR_APPROVAL_INVALID_STATE', `approval ${id} has no execution in progress`, { data: { approvalId: id, state: current.state } });
      }
      return { ...current, execution: { ...current.execution, finishedAt: now, ...outcome } };
    });
    this.audit.record({
      tenant: updated.tenant,
      at: now,
      type: 'approval.executed',
      actor: SYSTEM_ACTOR,
      jobId: updated.execution!.jobId,
      data: { approvalId: id, ...('resultRef' in outcome ? { resultRef: outcome.resultRef } : { errorCode: outcome.error.code }) },
    });
    return updated;
  }

  /** Atomically hands the outcome of a call run on approval to one retry. Undefined if not finished or already taken. */
  async takeResult(id: string, jobId: string): Promise<ApprovalRecord | undefined> {
    const now = this.clock.now();
    const took = { taken: false };
    const updated = await this.store.update(id, (current) => {
      took.taken = false;
      const execution = current.execution;
      if (current.state !== 'consumed' || execution?.finishedAt === undefined || execution.takenBy !== undefined) return current;
      took.taken = true;
      return { ...current, execution: { ...execution, takenBy: jobId, takenAt: now } };
    });
    if (!took.taken) return undefined;
    this.audit.record({ tenant: updated.tenant, at: now, type: 'approval.result_taken', actor: SYSTEM_ACTOR, jobId, data: { approvalId: id, executedBy: updated.execution!.jobId } });
    return updated;
  }

  /**
   * Waits until the approval leaves `pending`, the budget runs out, or the signal aborts; then returns its
   * current record. `onTick` runs every `tickMs` while waiting (the caller sends progress from it).
   */
  async waitForSettled(id: string, budgetMs: number, options: WaitOptions = {}): Promise<ApprovalRecord> {
    return this.waitUntil(id, (r) => r.state !== 'pending', budgetMs, options, true);
  }

  /** Waits until a call run on approval has an outcome (`execution.finishedAt`), within the budget. */
  async waitForResult(id: string, budgetMs: number, options: WaitOptions = {}): Promise<ApprovalRecord> {
    return this.waitUntil(id, (r) => r.execution?.finishedAt !== undefined || (r.state !== 'consumed' && r.state !== 'approved'), budgetMs, options, false);
  }

  /**
   * The gateway is stopping: every wait ends now, and any later one at once, with the approval as it then is. A
   * held call answers that it is still pending (the approval outlives the process) instead of holding the stop.
   */
  stopWaiting(): void {
    this.stopped = true;
    for (const finish of [...this.waits]) finish();
  }

  /** Marks every due approval expired. Run periodically, so expiry is audited even if nobody asks again. */
  async expireDue(): Promise<number> {
    let count = 0;
    for (const state of ['pending', 'approved'] as const) {
      for (const record of await this.store.list({ state })) {
        if ((await this.expireIfDue(record)) !== record) count++;
      }
    }
    return count;
  }

  private async resolveSerially(key: string, binding: ApprovalBinding, details: ApprovalRequestDetails): Promise<ApprovalOutcome> {
    const existing = await this.store.list({ bindingKey: key });
    const latest = existing[existing.length - 1];
    const outcome = latest && (await this.use(latest, binding, details.jobId));
    // The call's own approval comes first (an approved one is used up, not left lying); a grant stands in for a
    // human only where one would otherwise be asked, and then a question still pending is withdrawn.
    if (outcome && outcome.kind !== 'pending') return outcome;
    const granted = await details.findGrant?.();
    if (granted) {
      if (outcome) await this.cancel(outcome.approval.id, SYSTEM_ACTOR, `covered by grant ${granted.id}`);
      return { kind: 'granted', approval: granted };
    }
    return outcome ?? { kind: 'pending', approval: await this.create(key, binding, details), created: true };
  }

  /** What an approval found for this call means for it; undefined when it is of no more use and a new one is needed. */
  private async use(found: ApprovalRecord, binding: ApprovalBinding, jobId: string): Promise<ApprovalOutcome | undefined> {
    const record = await this.expireIfDue(found);
    switch (record.state) {
      case 'pending':
      case 'approved': {
        const refusal = verifyBinding(record, binding);
        if (refusal) return this.refuseStale(record, refusal);
        if (record.state === 'pending') return { kind: 'pending', approval: record, created: false };
        const claimed = await this.claim(record.id, jobId, binding.policySnapshot);
        if (claimed) return { kind: 'run', approval: claimed };
        // Another call claimed it first. If the gateway is running it on approval, this retry waits for that.
        const now = await this.store.get(record.id);
        return now?.execution ? this.useExecution(now, jobId) : undefined;
      }
      case 'consumed':
        return record.execution ? this.useExecution(record, jobId) : undefined;
      case 'denied':
        // A human said no to this exact call: identical retries get that answer until the TTL has passed.
        return this.clock.now() < settledAt(record) + this.ttlMs ? { kind: 'denied', approval: record } : undefined;
      case 'expired':
        return record.expiryReportedAt === undefined ? { kind: 'expired', approval: await this.reportExpiry(record.id) } : undefined;
      case 'cancelled':
        return undefined;
    }
  }

  private async useExecution(record: ApprovalRecord, jobId: string): Promise<ApprovalOutcome | undefined> {
    const execution = record.execution!;
    if (execution.takenBy !== undefined) return undefined;
    if (execution.finishedAt === undefined) return { kind: 'executing', approval: record };
    const taken = await this.takeResult(record.id, jobId);
    return taken ? { kind: 'result', approval: taken, execution: taken.execution! } : undefined;
  }

  /** A changed tool definition: the approval is cancelled with the reason, so the next call asks anew. */
  private async refuseStale(record: ApprovalRecord, refusal: BindingRefusal): Promise<ApprovalOutcome> {
    const cancelled = await this.transition(record.id, 'cancelled', SYSTEM_ACTOR, { reason: refusal.reason, code: refusal.code, from: ['pending', 'approved'] }).catch(
      async () => (await this.store.get(record.id)) ?? record,
    );
    return { kind: 'stale', approval: cancelled, code: 'GH_ERR_APPROVAL_STALE', reason: refusal.reason };
  }

  private async create(bindingKey: string, binding: ApprovalBinding, details: ApprovalRequestDetails): Promise<ApprovalRecord> {
    const now = this.clock.now();
    const policy = approvalPolicyOf(details.specs, this.groups);
    const id = `apr_${ulid()}`;
    if (policy.conflict) this.log?.warn(`approval ${id}: ${policy.conflict}`, { ...(details.logFields ?? { jobId: details.jobId }), approvalId: id, ruleIds: details.ruleIds, tool: binding.tool });
    const approverGroups = groupMembers(policy.approvers, this.groups);
    const record: ApprovalRecord = {
      version: APPROVAL_RECORD_VERSION,
      id,
      state: 'pending',
      ...binding,
      bindingKey,
      jobId: details.jobId,
      ruleIds: [...details.ruleIds],
      reason: policy.conflict ? `${details.reason} (${policy.conflict})` : details.reason,
      ...(details.annotations ? { annotations: details.annotations } : {}),
      argsPreview: details.argsPreview,
      ...(details.argsSummary !== undefined ? { argsSummary: details.argsSummary } : {}),
      ...(details.redactedArgs ? { redactedArgs: details.redactedArgs } : {}),
      ...(details.argsCut ? { argsCut: details.argsCut } : {}),
      ...(details.argsRef ? { argsRef: details.argsRef } : {}),
      ...(details.sessionId ? { sessionId: details.sessionId } : {}),
      createdAt: now,
      expiresAt: now + (policy.ttlMs ?? this.ttlMs),
      history: [{ state: 'pending', at: now, actor: binding.principal }],
      ...(policy.approvers ? { approvers: policy.approvers } : {}),
      ...(approverGroups ? { approverGroups } : {}),
      selfApprove: policy.selfApprove,
      quorum: policy.quorum,
      onApprove: policy.onApprove,
      votes: [],
    };
    await this.store.create(record);
    this.audit.record({
      tenant: record.tenant,
      at: now,
      type: 'approval.created',
      actor: binding.principal,
      jobId: details.jobId,
      data: {
        approvalId: record.id,
        server: record.server,
        tool: record.tool,
        argsDigest: record.argsDigest,
        toolDigest: record.toolDigest,
        policySnapshot: record.policySnapshot,
        ruleIds: record.ruleIds,
        expiresAt: record.expiresAt,
        ...(record.approvers ? { approvers: record.approvers } : {}),
        selfApprove: record.selfApprove,
        quorum: record.quorum,
        onApprove: record.onApprove,
      },
    });
    return record;
  }

  private async claimWith(id: string, jobId: string, policySnapshot: string | undefined, execute: boolean): Promise<ApprovalRecord | undefined> {
    if (execute && (await this.store.get(id))?.onApprove !== 'execute') {
      throw new GatewayError('GH_ERR_APPROVAL_INVALID_STATE', `approval ${id} waits for the retry; the gateway does not run it on approval`, { data: { approvalId: id } });
    }
    try {
      return await this.transition(id, 'consumed', SYSTEM_ACTOR, {
        from: ['approved'],
        jobId,
        fields: (current) => {
          const at = this.clock.now();
          return { claimedBy: { jobId, policySnapshot: policySnapshot ?? current.policySnapshot, at }, ...(execute ? { execution: { jobId, startedAt: at } } : {}) };
        },
        entry: { jobId },
        data: { ...(policySnapshot ? { policySnapshot } : {}), ...(execute ? { execute: true } : {}) },
      });
    } catch (err) {
      if (isGatewayError(err, 'GH_ERR_APPROVAL_INVALID_STATE')) return undefined;
      throw err;
    }
  }

  private async expireIfDue(record: ApprovalRecord): Promise<ApprovalRecord> {
    if ((record.state !== 'pending' && record.state !== 'approved') || this.clock.now() < record.expiresAt) return record;
    try {
      return await this.transition(record.id, 'expired', SYSTEM_ACTOR, { reason: 'the approval was not used before it expired', from: ['pending', 'approved'] });
    } catch {
      return (await this.store.get(record.id)) ?? record;
    }
  }

  /** Expires it first if due, so that a late decision is told it expired rather than anything else. */
  private async requireOpen(id: string): Promise<ApprovalRecord> {
    const current = await this.get(id);
    if (!current) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `no approval ${id}`, { data: { approvalId: id } });
    assertUndecided(current);
    return current;
  }

  /** Runs a human's action; a refused actor is audited, naming them, before the error goes back. */
  private async guarded(id: string, actor: string, action: 'approve' | 'deny', by: ActedBy, run: () => Promise<ApprovalRecord>): Promise<ApprovalRecord> {
    try {
      return await run();
    } catch (err) {
      if (isGatewayError(err, 'GH_ERR_APPROVER_NOT_ALLOWED') || isGatewayError(err, 'GH_ERR_SELF_APPROVAL_FORBIDDEN')) {
        this.audit.record({
          tenant: String(err.data?.tenant),
          at: this.clock.now(),
          type: 'approval.refused_approver',
          actor,
          ...(typeof err.data?.jobId === 'string' ? { jobId: err.data.jobId } : {}),
          data: { approvalId: id, action, code: err.code, reason: err.message, ...by },
        });
      }
      throw err;
    }
  }

  private assertCanLeave(current: ApprovalRecord, to: ApprovalState, from: readonly ApprovalState[], now: number): void {
    if (!from.includes(current.state) || !APPROVAL_TRANSITIONS[current.state].includes(to)) {
      throw new GatewayError('GH_ERR_APPROVAL_INVALID_STATE', `approval ${current.id} is ${current.state} and cannot become ${to}`, {
        data: { approvalId: current.id, state: current.state, wanted: to },
      });
    }
    if (to === 'approved' && current.expiresAt <= now) {
      throw new GatewayError('GH_ERR_APPROVAL_EXPIRED', `approval ${current.id} expired before it was approved`, { data: { approvalId: current.id } });
    }
  }

  private async transition(id: string, to: ApprovalState, actor: string, options: TransitionOptions = {}): Promise<ApprovalRecord> {
    const now = this.clock.now();
    const from = options.from ?? (Object.keys(APPROVAL_TRANSITIONS) as ApprovalState[]).filter((s) => APPROVAL_TRANSITIONS[s].includes(to));
    // Pure: an adapter may run it more than once (optimistic concurrency).
    const updated = await this.store.update(id, (current) => {
      options.check?.(current);
      this.assertCanLeave(current, to, from, now);
      const entry: ApprovalTransition = { state: to, at: now, actor, ...(options.reason ? { reason: options.reason } : {}), ...(options.code ? { code: options.code } : {}), ...options.entry };
      const fields = options.fields?.(current);
      if (fields?.claimedBy) entry.policySnapshot = fields.claimedBy.policySnapshot;
      return { ...current, ...fields, state: to, history: [...current.history, entry] };
    });
    this.audit.record({
      tenant: updated.tenant,
      at: now,
      type: `approval.${to}`,
      actor,
      jobId: options.jobId ?? updated.jobId,
      data: { approvalId: id, ...(options.reason ? { reason: options.reason } : {}), ...(options.code ? { code: options.code } : {}), ...options.data },
    });
    return updated;
  }

  private async waitUntil(id: string, done: (r: ApprovalRecord) => boolean, budgetMs: number, options: WaitOptions, capByExpiry: boolean): Promise<ApprovalRecord> {
    const initial = await this.get(id);
    if (!initial) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `no approval ${id}`);
    if (done(initial) || options.signal?.aborted || this.stopped) return initial;
    // Wake just after expiry, not at it: timers and the wall clock round differently (by up to a millisecond), and
    // a wait that woke a hair early would read the approval as still pending.
    const until = capByExpiry ? Math.min(budgetMs, Math.max(0, initial.expiresAt - this.clock.now()) + EXPIRY_MARGIN_MS) : budgetMs;
    await new Promise<void>((resolve) => {
      const finish = () => {
        this.waits.delete(finish);
        unwatch();
        clearTimeout(timer);
        if (ticker) clearInterval(ticker);
        options.signal?.removeEventListener('abort', finish);
        resolve();
      };
      const unwatch = this.store.watch((record) => {
        if (record.id === id && done(record)) finish();
      });
      const timer = setTimeout(finish, until);
      const ticker = options.onTick ? setInterval(options.onTick, options.tickMs ?? 10_000) : undefined;
      options.signal?.addEventListener('abort', finish, { once: true });
      this.waits.add(finish);
      // It may have changed between the first read and the watch starting.
      void this.store.get(id).then((r) => r && done(r) && finish(), () => undefined);
    });
    return (await this.get(id)) ?? initial;
  }
}

function refusalError(record: ApprovalRecord, actor: string, refusal: ApproverRefusal): GatewayError {
  return new GatewayError(refusal.code, refusal.reason, { data: { approvalId: record.id, actor, tenant: record.tenant, jobId: record.jobId } });
}

/**
 * A decision is final. An approval that left `pending` cannot be approved or denied again: two approvers clicking
 * at once, or a second tab, are told who decided (GH_ERR_APPROVAL_INVALID_STATE; an expired one GH_ERR_APPROVAL_EXPIRED).
 */
export function assertUndecided(record: ApprovalRecord): void {
  if (record.state === 'pending') return;
  const data = { approvalId: record.id, state: record.state };
  if (record.state === 'expired') throw new GatewayError('GH_ERR_APPROVAL_EXPIRED', `approval ${record.id} expired at ${new Date(record.expiresAt).toISOString()}`, { data });
  // A consumed approval was approved first; name that decision rather than the system's claim.
  const decided = record.state === 'consumed' ? 'approved' : record.state;
  const entry = [...record.history].reverse().find((t) => t.state === decided);
  const by = entry ? ` by ${entry.actor} at ${new Date(entry.at).toISOString()}` : '';
  const what = record.state === 'cancelled' ? 'withdrawn (cancelled)' : decided;
  const ran = record.state === 'consumed' ? ', and its call has run' : '';
  throw new GatewayError('GH_ERR_APPROVAL_INVALID_STATE', `approval ${record.id} was already ${what}${by}${ran}; a decision cannot be changed`, { data });
}

function settledAt(record: ApprovalRecord): number {
  return record.history[record.history.length - 1]?.at ?? record.createdAt;
}
