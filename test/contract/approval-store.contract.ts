import { describe, expect, it } from 'vitest';
import type { ApprovalStore } from '../../src/ports.ts';
import type { ApprovalRecord } from '../../src/approvals/approval.ts';
import { GatewayError } from '../../src/errors.ts';

export function sampleApproval(id: string, overrides: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
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
    ...overrides,
  };
}

/** What every ApprovalStore adapter must do, across processes or replicas. */
export function runApprovalStoreContract(name: string, makeStore: () => Promise<ApprovalStore> | ApprovalStore, reopen: () => Promise<ApprovalStore> | ApprovalStore): void {
  describe(`ApprovalStore contract: ${name}`, () => {
    it('creates, reads and lists by state and binding', async () => {
      const store = await makeStore();
      await store.create(sampleApproval('a1'));
      await store.create(sampleApproval('a2', { state: 'approved', bindingKey: 'shared' }));
      expect((await store.get('a1'))?.reason).toBe('because');
      expect((await store.list({ state: 'approved' })).map((r) => r.id)).toEqual(['a2']);
      expect((await store.list({ bindingKey: 'shared' })).map((r) => r.id)).toEqual(['a2']);
      await expect(store.create(sampleApproval('a1'))).rejects.toBeInstanceOf(GatewayError);
      await store.close();
    });

    it('survives being reopened (another process, a restart)', async () => {
      const store = await makeStore();
      await store.create(sampleApproval('r1'));
      await store.close();
      const again = await reopen();
      expect((await again.get('r1'))?.state).toBe('pending');
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
  });
}
