import { describe, expect, it } from 'vitest';
import type { ApprovalStore, Clock } from '../../src/ports.ts';
import { APPROVAL_RECORD_VERSION, bindingKeyOf, type ApprovalBinding, type ApprovalRecord, type StoredApprovalRecord } from '../../src/protocol/approval-record.ts';
import { ApprovalService } from '../../src/approvals/service.ts';
import { AuditTrail } from '../../src/audit/trail.ts';
import type { AuditEvent } from '../../src/protocol/audit-record.ts';
import { digestOf } from '../../src/protocol/digest.ts';
import { GatewayError } from '../../src/errors.ts';

export function sampleApproval(id: string, overrides: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    version: APPROVAL_RECORD_VERSION,
    id,
    state: 'pending',
    tenant: 't',
    principal: 'alice',
    server: 'fx',
    tool: 'fx__write',
    argsDigest: 'sha256:a',
    toolDigest: 'sha256:t',
    policySnapshot: 'sha256:p',
    bindingKey: `bind-${id}`,
    jobId: 'J1',
    ruleIds: ['r'],
    reason: 'because',
    argsPreview: '{}',
    createdAt: 1,
    expiresAt: 2,
    history: [{ state: 'pending', at: 1, actor: 'alice' }],
    selfApprove: true,
    quorum: 1,
    onApprove: 'wait_for_retry',
    votes: [],
    ...overrides,
  };
}

/**
 * A record exactly as Gatehouse 0.1 wrote it: no version, no approval options, and a binding key that covered
 * the tool digest and the policy snapshot too.
 */
export function legacyApproval(id: string, binding: ApprovalBinding, overrides: Partial<StoredApprovalRecord> = {}): Record<string, unknown> {
  return {
    id,
    state: 'pending',
    ...binding,
    bindingKey: digestOf(binding),
    jobId: 'J0',
    ruleIds: ['r'],
    reason: 'destructive',
    argsPreview: '{}',
    createdAt: 1_000,
    expiresAt: 10_000_000,
    history: [{ state: 'pending', at: 1_000, actor: binding.principal }],
    ...overrides,
  };
}

export interface ApprovalStoreContractOptions {
  /** Writes a record the way the previous version stored it (raw, not through `create`). Default: `create`. */
  writeLegacy?(store: ApprovalStore, record: Record<string, unknown>): Promise<void>;
}

const binding: ApprovalBinding = { tenant: 't', principal: 'alice', server: 'fx', tool: 'fx__write', argsDigest: 'sha256:a', toolDigest: 'sha256:t', policySnapshot: 'sha256:p' };
const details = { jobId: 'J', ruleIds: ['r'], reason: 'destructive', argsPreview: '{}' };

/** The service over a store, with a manual clock and the audit events kept in memory. */
function serviceOver(store: ApprovalStore, now: { ms: number }, events: AuditEvent[] = []): ApprovalService {
  const clock: Clock = { now: () => now.ms, sleep: async () => undefined };
  const audit = new AuditTrail({ write: async (batch) => void [...batch.values()].forEach((e) => events.push(...e)), close: async () => undefined }, { flushIntervalMs: 0 });
  return new ApprovalService(store, audit, clock, 60_000);
}

/** What every ApprovalStore adapter must do, across processes or replicas. */
export function runApprovalStoreContract(
  name: string,
  makeStore: () => Promise<ApprovalStore> | ApprovalStore,
  reopen: () => Promise<ApprovalStore> | ApprovalStore,
  options: ApprovalStoreContractOptions = {},
): void {
  const writeLegacy = options.writeLegacy ?? ((store, record) => store.create(record as unknown as ApprovalRecord));

  describe(`ApprovalStore contract: ${name}`, () => {
    it('creates, reads and lists by state and binding', async () => {
      const store = await makeStore();
      await store.create(sampleApproval('a1'));
      await store.create(sampleApproval('a2', { state: 'approved', bindingKey: 'shared' }));
      await store.create(sampleApproval('a3', { bindingKey: 'shared', createdAt: 0 }));
      expect((await store.get('a1'))?.reason).toBe('because');
      expect((await store.list({ state: 'approved' })).map((r) => r.id)).toEqual(['a2']);
      expect((await store.list({ bindingKey: 'shared' })).map((r) => r.id)).toEqual(['a3', 'a2']);
      expect(await store.list({ bindingKey: 'nothing' })).toEqual([]);
      await expect(store.create(sampleApproval('a1'))).rejects.toBeInstanceOf(GatewayError);
      await store.close();
    });

    it('survives being reopened (another process, a restart)', async () => {
      const store = await makeStore();
      await store.create(sampleApproval('r1', { bindingKey: 'k-r1' }));
      await store.close();
      const again = await reopen();
      expect((await again.get('r1'))?.state).toBe('pending');
      expect((await again.list({ bindingKey: 'k-r1' })).map((r) => r.id)).toEqual(['r1']);
      await again.close();
    });

    it('serializes concurrent updates: exactly one of many racing claims wins', async () => {
      const store = await makeStore();
      await store.create(sampleApproval('c1', { state: 'approved' }));
      const other = await reopen();
      const claim = (s: ApprovalStore) =>
        s
          .update('c1', (r) => {
            if (r.state !== 'approved') throw new GatewayError('GH_ERR_APPROVAL_INVALID_STATE', 'taken');
            return { ...r, state: 'consumed' };
          })
          .then(
            () => true,
            () => false,
          );
      const wins = await Promise.all([...Array.from({ length: 5 }, () => claim(store)), ...Array.from({ length: 5 }, () => claim(other))]);
      expect(wins.filter(Boolean)).toHaveLength(1);
      expect((await store.get('c1'))?.state).toBe('consumed');
      await store.close();
      await other.close();
    });

    it('never loses an update when two handles on the same data update at once', async () => {
      const store = await makeStore();
      await store.create(sampleApproval('u1'));
      const other = await reopen();
      const vote = (s: ApprovalStore, actor: string) => s.update('u1', (r) => ({ ...r, votes: [...r.votes, { actor, at: 1 }] }));
      await Promise.all(Array.from({ length: 10 }, (_, i) => [vote(store, `a${i}`), vote(other, `b${i}`)]).flat());
      const votes = (await other.get('u1'))!.votes.map((v) => v.actor);
      expect(votes).toHaveLength(20);
      expect(new Set(votes).size).toBe(20);
      await store.close();
      await other.close();
    });

    it('changes nothing when the update returns the current record', async () => {
      const store = await makeStore();
      await store.create(sampleApproval('n1'));
      const before = await store.get('n1');
      expect(await store.update('n1', (r) => r)).toEqual(before);
      await store.close();
    });

    it('reports an unknown id on update', async () => {
      const store = await makeStore();
      await expect(store.update('nope', (r) => r)).rejects.toMatchObject({ code: 'GH_ERR_APPROVAL_NOT_FOUND' });
      await store.close();
    });

    it('tells watchers about changes made through another handle', async () => {
      const store = await makeStore();
      await store.create(sampleApproval('w1'));
      const seen: string[] = [];
      const stop = store.watch((r) => seen.push(`${r.id}:${r.state}`));
      const other = await reopen();
      await other.update('w1', (r) => ({ ...r, state: 'approved' }));
      const until = Date.now() + 5_000;
      while (!seen.includes('w1:approved') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(seen).toContain('w1:approved');
      stop();
      await store.close();
      await other.close();
    });

    it('loads a record written by the previous version, and a retry of its call still finds it', async () => {
      const store = await makeStore();
      const legacy = legacyApproval('apr_legacy1', binding);
      await writeLegacy(store, legacy);
      const other = await reopen();
      const loaded = await other.get('apr_legacy1');
      expect(loaded).toMatchObject({ version: APPROVAL_RECORD_VERSION, bindingKey: bindingKeyOf(binding), selfApprove: true, quorum: 1, onApprove: 'wait_for_retry', votes: [] });
      expect((await other.list({ bindingKey: bindingKeyOf(binding) })).map((r) => r.id)).toEqual(['apr_legacy1']);

      const now = { ms: 2_000 };
      const service = serviceOver(other, now);
      expect(await service.resolve(binding, details)).toMatchObject({ kind: 'pending', created: false, approval: { id: 'apr_legacy1' } });
      await service.approve('apr_legacy1', 'bob');
      expect(await service.resolve(binding, details)).toMatchObject({ kind: 'run', approval: { id: 'apr_legacy1', state: 'consumed' } });
      await store.close();
      await other.close();
    });

    it('counts the votes of approvers acting through two handles at once toward the quorum', async () => {
      const store = await makeStore();
      const other = await reopen();
      const now = { ms: 1_000 };
      const first = serviceOver(store, now);
      const second = serviceOver(other, now);
      const { approval } = await first.resolve(binding, { ...details, specs: [{ ruleId: 'r', quorum: 3 }] });
      await Promise.all([first.approve(approval.id, 'bob'), second.approve(approval.id, 'carol'), first.approve(approval.id, 'bob')]);
      const midway = (await second.get(approval.id))!;
      expect(midway.state).toBe('pending');
      expect(midway.votes.map((v) => v.actor).sort()).toEqual(['bob', 'carol']);
      const done = await second.approve(approval.id, 'dave');
      expect(done.state).toBe('approved');
      expect(done.votes.map((v) => v.actor).sort()).toEqual(['bob', 'carol', 'dave']);
      await store.close();
      await other.close();
    });

    it('refuses an approval whose tool changed through either handle, and cancels it with the code', async () => {
      const store = await makeStore();
      const other = await reopen();
      const now = { ms: 1_000 };
      const first = serviceOver(store, now);
      const second = serviceOver(other, now);
      const { approval } = await first.resolve(binding, details);
      await second.approve(approval.id, 'bob');
      const changed = { ...binding, toolDigest: 'sha256:t2' };
      expect(await second.resolve(changed, details)).toMatchObject({ kind: 'stale', code: 'GH_ERR_APPROVAL_STALE', approval: { id: approval.id, state: 'cancelled' } });
      const stored = (await store.get(approval.id))!;
      expect(stored.history.at(-1)).toMatchObject({ state: 'cancelled', actor: 'gatehouse', code: 'GH_ERR_APPROVAL_STALE' });
      expect(await first.resolve(changed, details)).toMatchObject({ kind: 'pending', created: true });
      await store.close();
      await other.close();
    });
  });
}
