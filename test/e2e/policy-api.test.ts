import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { api, approverAuth, KEYS } from '../helpers/approvers.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ auth: approverAuth });
});
afterAll(async () => {
  await h?.close();
});

describe('the policy endpoints', () => {
  it('shows the bundle in force to approvers only', async () => {
    expect((await api(h, '/api/policy')).status).toBe(401);
    expect((await api(h, '/api/policy', { key: KEYS.caller })).status).toBe(403);
    const shown = await api(h, '/api/policy', { key: KEYS.approver });
    expect(shown.status).toBe(200);
    expect(shown.body.policy.snapshot).toBe(h.gateway.kernel.snapshot);
    expect(shown.body.policy.rules.map((r: { id: string }) => r.id)).toContain('destructive-tools-need-approval');
  });

  it("explains one call exactly as decide sees it, in the approver's own tenant", async () => {
    const call = { tool: 'fx__write', annotations: { destructiveHint: true }, args: { key: 'k' }, now: 1_000 };
    const explained = await api(h, '/api/policy/explain', { method: 'POST', key: KEYS.approver, body: call });
    expect(explained.status).toBe(200);
    expect(explained.body.decision).toMatchObject({ effect: 'require_approval', policySnapshot: h.gateway.kernel.snapshot });
    expect(explained.body.rules.find((r: { id: string }) => r.id === 'destructive-tools-need-approval')).toMatchObject({ matched: true });
    expect(explained.body.decision).toEqual(h.gateway.kernel.decide({ tenant: 'default', principal: 'test', server: 'fx', tool: 'fx__write', annotations: { destructiveHint: true }, args: { key: 'k' }, now: 1_000 }));

    const otherTenant = await api(h, '/api/policy/explain', { method: 'POST', key: KEYS.approver, body: { ...call, tenant: 'tenant-b' } });
    expect(otherTenant).toMatchObject({ status: 403, body: { error: { code: 'GH_ERR_FORBIDDEN' } } });
    const bad = await api(h, '/api/policy/explain', { method: 'POST', key: KEYS.approver, body: { tool: 'no-namespace' } });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'GH_ERR_INVALID_REQUEST' } } });
    expect(bad.body.error.message).toContain('tool');
  });
});
