import type { ApprovalStore, Clock } from '../ports.ts';
import type { AuditTrail } from '../audit/trail.ts';
import type { ToolAnnotations } from '../protocol/mcp.ts';
import { digestOf } from '../protocol/digest.ts';
import { ulid } from '../protocol/ulid.ts';
import { GatewayError } from '../errors.ts';
import { APPROVAL_TRANSITIONS, type ApprovalBinding, type ApprovalRecord, type ApprovalState } from './approval.ts';

export type { ApprovalBinding };


export interface ApprovalRequestDetails {
  jobId: string;
  ruleIds: string[];
  reason: string;
  annotations?: ToolAnnotations;
  argsPreview: string;
  /** How long the approval may stay pending, when the policy sets it (the service's default otherwise). */
  ttlMs?: number;
}

/** What the call path should do about an approval-gated call right now. */
export type ApprovalOutcome =
  | { kind: 'run'; approval: ApprovalRecord }
  | { kind: 'pending'; approval: ApprovalRecord; created: boolean }
  | { kind: 'denied'; approval: ApprovalRecord }
  | { kind: 'expired'; approval: ApprovalRecord };

const SYSTEM_ACTOR = 'gatehouse';

/**
 * Approval lifecycle: creation bound to an exact call, human decisions, expiry, and the atomic single-use
 * claim that lets an approved call run exactly once. Every transition is an audit event naming its actor.
 */
export class ApprovalService {
  private readonly serial = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: ApprovalStore,
    private readonly audit: AuditTrail,
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {}

  static bindingKey(binding: ApprovalBinding): string {
    return digestOf(binding);
  }

  /**
   * Finds the approval for this exact call and says what to do: run it (the approval was claimed for this
   * call), wait (pending), or refuse (denied, expired). With no usable approval, a new pending one is created.
   */
  resolve(binding: ApprovalBinding, details: ApprovalRequestDetails): Promise<ApprovalOutcome> {
    const key = ApprovalService.bindingKey(binding);
    // Identical concurrent calls in this process share one approval rather than racing to create two.
    const previous = this.serial.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.resolveSerially(key, binding, details));
    this.serial.set(key, next);
    void next.finally(() => {
      if (this.serial.get(key) === next) this.serial.delete(key);
    }).catch(() => undefined);
    return next;
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const record = await this.store.get(id);
    return record && this.expireIfDue(record);
  }

  async list(state?: ApprovalState): Promise<ApprovalRecord[]> {
    const records = await Promise.all((await this.store.list()).map((r) => this.expireIfDue(r)));
    return state ? records.filter((r) => r.state === state) : records;
  }

  approve(id: string, actor: string, reason?: string): Promise<ApprovalRecord> {
    return this.decide(id, 'approved', actor, reason);
  }

  deny(id: string, actor: string, reason?: string): Promise<ApprovalRecord> {
    return this.decide(id, 'denied', actor, reason);
  }

  /** A human's decision. An approval past its expiry is marked expired first, so the decision names that. */
  private async decide(id: string, to: 'approved' | 'denied', actor: string, reason?: string): Promise<ApprovalRecord> {
    const current = await this.get(id);
    if (!current) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `no approval ${id}`);
    if (current.state === 'expired') throw new GatewayError('GH_ERR_APPROVAL_EXPIRED', `approval ${id} expired at ${new Date(current.expiresAt).toISOString()}`, { data: { approvalId: id } });
    return this.transition(id, to, actor, reason);
  }

  /** Withdraws a pending approval, for instance when the client cancelled the held call. */
  async cancel(id: string, actor: string, reason: string): Promise<ApprovalRecord | undefined> {
    return this.transition(id, 'cancelled', actor, reason).catch(() => undefined);
  }

  /** Notes that a caller was told of the expiry: the next identical call then asks for a new approval. */
  reportExpiry(id: string): Promise<ApprovalRecord> {
    return this.store.update(id, (r) => (r.expiryReportedAt === undefined ? { ...r, expiryReportedAt: this.clock.now() } : r));
  }

  /** Atomically turns `approved` into `consumed`. Only one caller, in any process, ever gets the record. */
  async claim(id: string, jobId: string): Promise<ApprovalRecord | undefined> {
    try {
      return await this.transition(id, 'consumed', SYSTEM_ACTOR, undefined, jobId, ['approved']);
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'GH_ERR_APPROVAL_INVALID_STATE') return undefined;
      throw err;
    }
  }

  /**
   * Waits until the approval leaves `pending`, the budget runs out, or the signal aborts; then returns its
   * current record. `onTick` runs every `tickMs` while waiting (the caller sends progress from it).
   */
  async waitForSettled(id: string, budgetMs: number, options: { signal?: AbortSignal; tickMs?: number; onTick?: () => void } = {}): Promise<ApprovalRecord> {
    const initial = await this.get(id);
    if (!initial) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `no approval ${id}`);
    if (initial.state !== 'pending' || options.signal?.aborted) return initial;
    const until = Math.min(budgetMs, Math.max(0, initial.expiresAt - this.clock.now()));
    await new Promise<void>((resolve) => {
      const finish = () => {
        unwatch();
        clearTimeout(timer);
        if (ticker) clearInterval(ticker);
        options.signal?.removeEventListener('abort', finish);
        resolve();
      };
      const unwatch = this.store.watch((record) => {
        if (record.id === id && record.state !== 'pending') finish();
      });
      const timer = setTimeout(finish, until);
      const ticker = options.onTick ? setInterval(options.onTick, options.tickMs ?? 10_000) : undefined;
      options.signal?.addEventListener('abort', finish, { once: true });
      // It may have settled between the first read and the watch starting.
      void this.store.get(id).then((r) => r && r.state !== 'pending' && finish(), () => undefined);
    });
    return (await this.get(id)) ?? initial;
  }

  /** Marks every due approval expired. Run periodically, so expiry is audited even if nobody asks again. */
  async expireDue(): Promise<number> {
    let count = 0;
    for (const record of await this.store.list()) {
      if ((await this.expireIfDue(record)) !== record) count++;
    }
    return count;
  }

  private async resolveSerially(key: string, binding: ApprovalBinding, details: ApprovalRequestDetails): Promise<ApprovalOutcome> {
    const existing = await this.store.list({ bindingKey: key });
    let latest = existing[existing.length - 1];
    if (latest) latest = await this.expireIfDue(latest);
    switch (latest?.state) {
      case 'pending':
        return { kind: 'pending', approval: latest, created: false };
      case 'approved': {
        const claimed = await this.claim(latest.id, details.jobId);
        if (claimed) return { kind: 'run', approval: claimed };
        break; // another call consumed it first: this one needs a new approval
      }
      case 'denied':
        // A human said no to this exact call: identical retries get that answer until the TTL has passed.
        if (this.clock.now() < settledAt(latest) + this.ttlMs) return { kind: 'denied', approval: latest };
        break;
      case 'expired':
        if (latest.expiryReportedAt === undefined) return { kind: 'expired', approval: await this.reportExpiry(latest.id) };
        break;
    }
    return { kind: 'pending', approval: await this.create(key, binding, details), created: true };
  }

  private async create(bindingKey: string, binding: ApprovalBinding, details: ApprovalRequestDetails): Promise<ApprovalRecord> {
    const now = this.clock.now();
    const record: ApprovalRecord = {
      id: `apr_${ulid()}`,
      state: 'pending',
      ...binding,
      bindingKey,
      jobId: details.jobId,
      ruleIds: details.ruleIds,
      reason: details.reason,
      ...(details.annotations ? { annotations: details.annotations } : {}),
      argsPreview: details.argsPreview,
      createdAt: now,
      expiresAt: now + (details.ttlMs ?? this.ttlMs),
      history: [{ state: 'pending', at: now, actor: binding.principal }],
    };
    await this.store.create(record);
    this.audit.record({
      tenant: record.tenant,
      at: now,
      type: 'approval.created',
      actor: binding.principal,
      jobId: details.jobId,
      data: { approvalId: record.id, server: record.server, tool: record.tool, argsDigest: record.argsDigest, toolDigest: record.toolDigest, policySnapshot: record.policySnapshot, ruleIds: record.ruleIds, expiresAt: record.expiresAt },
    });
    return record;
  }

  private async expireIfDue(record: ApprovalRecord): Promise<ApprovalRecord> {
    if ((record.state !== 'pending' && record.state !== 'approved') || this.clock.now() < record.expiresAt) return record;
    try {
      return await this.transition(record.id, 'expired', SYSTEM_ACTOR, 'the approval was not used before it expired', undefined, ['pending', 'approved']);
    } catch {
      return (await this.store.get(record.id)) ?? record;
    }
  }

  private async transition(
    id: string,
    to: ApprovalState,
    actor: string,
    reason?: string,
    jobId?: string,
    from?: readonly ApprovalState[],
  ): Promise<ApprovalRecord> {
    const now = this.clock.now();
    const updated = await this.store.update(id, (current) => {
      const allowed = from ?? Object.keys(APPROVAL_TRANSITIONS).filter((s) => APPROVAL_TRANSITIONS[s as ApprovalState].includes(to));
      if (!allowed.includes(current.state) || !APPROVAL_TRANSITIONS[current.state].includes(to)) {
        throw new GatewayError('GH_ERR_APPROVAL_INVALID_STATE', `approval ${id} is ${current.state} and cannot become ${to}`, {
          data: { approvalId: id, state: current.state, wanted: to },
        });
      }
      if (to === 'approved' && current.expiresAt <= now) {
        throw new GatewayError('GH_ERR_APPROVAL_EXPIRED', `approval ${id} expired before it was approved`, { data: { approvalId: id } });
      }
      return { ...current, state: to, history: [...current.history, { state: to, at: now, actor, ...(reason ? { reason } : {}) }] };
    });
    this.audit.record({
      tenant: updated.tenant,
      at: now,
      type: `approval.${to}`,
      actor,
      jobId: jobId ?? updated.jobId,
      data: { approvalId: id, ...(reason ? { reason } : {}) },
    });
    return updated;
  }
}

function settledAt(record: ApprovalRecord): number {
  return record.history[record.history.length - 1]?.at ?? record.createdAt;
}
