import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AdvancingClock, connectHttp, startHarness, TEST_DECISION_BUDGET_MS, type Harness } from '../helpers/gateway-harness.ts';
import { gatehouse } from '../helpers/cli.ts';
import { prefilledCondition } from '../../src/approvals/grant.ts';
import { csrfOf, PageClient } from '../helpers/page-client.ts';
import { api, approverAuth, connectWithKey, heldWrite, KEYS, pendingApproval, resultText } from '../helpers/approvers.ts';

const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

async function harness(clock?: AdvancingClock, overrides = {}) {
  const h = await startHarness(overrides, { clock });
  harnesses.push(h);
  return h;
}

/** A gateway with approver keys, and a caller's held write waiting for its approval. */
async function heldForAnApprover(args?: Record<string, unknown>) {
  const h = await harness(undefined, { auth: approverAuth });
  const client = await connectWithKey(h.url, KEYS.caller);
  const held = heldWrite(client, args);
  return { h, client, held, approval: await pendingApproval(h) };
}

const text = (result: { content: unknown }) => (result.content as { text: string }[])[0].text;
const approvalId = (result: { _meta?: Record<string, unknown> }) => (result._meta?.['gatehouse/approval'] as { id: string }).id;
const write = (args: Record<string, unknown>) => ({ name: 'fx__write', arguments: args });
const HALF_HOUR = 30 * 60_000;

/**
 * A gateway whose policy file holds one rule on fx__write (`rule` gives its options), and a principal grant for
 * `args.key == "k"` given by bob on the first call's approval, used once. `rewrite` swaps the rule and reloads.
 */
async function grantedUnderPolicyFile(rule: (options: string) => string, first: string) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-grants-'));
  const policyFile = join(dir, 'policy.yaml');
  const policy = (options: string) => `version: 2\ndefault: allow\nrules:\n  - { id: writes, match: { tools: [fx__write] }, reason: writes change data, ${rule(options)} }\n`;
  writeFileSync(policyFile, policy(first));
  const h = await harness(undefined, { policies: [policyFile], kernel: { decisionBudget: TEST_DECISION_BUDGET_MS, watchPolicies: false } });
  const client = await connectHttp(h.url);
  const args = { key: 'k', value: 'v' };
  const id = approvalId(await client.callTool(write(args)));
  const { grant } = await h.gateway.approvals.approveWithGrant(id, 'bob', { condition: 'args.key == "k"', scope: 'principal', durationMs: HALF_HOUR });
  expect(text(await client.callTool(write(args)))).toBe('wrote k');
  const rewrite = (options: string) => {
    writeFileSync(policyFile, policy(options));
    expect(h.gateway.reloadPolicy()).toMatchObject({ kind: 'swapped' });
  };
  return { h, client, args, id, grant, rewrite };
}

describe('approval grants ("this and matching calls")', () => {
  it('lets matching calls through without asking, but not a call with one argument changed; revoking stops it', async () => {
    const h = await harness();
    const client = await connectHttp(h.url);
    const first = { key: 'k', value: 'v' };
    const id = approvalId(await client.callTool(write(first)));
    const approval = (await h.gateway.approvals.get(id))!;
    const condition = prefilledCondition(approval.redactedArgs);
    expect(condition).toBe('args.key == "k" && args.value == "v"');
    const { grant } = await h.gateway.approvals.approveWithGrant(id, 'bob', { condition, scope: 'session', durationMs: HALF_HOUR });

    // The first retry uses the approval itself; the two after it, the grant.
    for (let i = 0; i < 3; i++) {
      const ran = await client.callTool(write(first));
      expect(text(ran)).toBe('wrote k');
      expect(ran._meta?.['gatehouse/job']).toMatchObject(i === 0 ? { approvalId: id } : { approvalId: id, grantId: grant.id });
    }
    expect(h.writes()).toBe(3);
    const changed = await client.callTool(write({ key: 'k', value: 'w' }));
    expect(text(changed)).toContain('GH_ERR_APPROVAL_PENDING');
    expect(h.writes()).toBe(3);

    // Another MCP session of the same principal: a session grant does not reach it.
    const other = await connectHttp(h.url);
    const asked = await other.callTool(write(first));
    expect(text(asked)).toContain('GH_ERR_APPROVAL_PENDING');
    await other.close();
    // Withdrawn, that question no longer stands in the way: the grant still serves its own session.
    await h.gateway.approvals.cancel(approvalId(asked), 'tester', 'the test withdraws it');
    expect(text(await client.callTool(write(first)))).toBe('wrote k');
    expect(h.writes()).toBe(4);

    const listed = await gatehouse(['approvals', 'grants', '--data-dir', h.dataDir]);
    expect(listed.stdout).toContain(grant.id);
    expect(await gatehouse(['approvals', 'revoke', grant.id, '--as', 'bob', '--data-dir', h.dataDir])).toMatchObject({ code: 0 });
    expect(text(await client.callTool(write(first)))).toContain('GH_ERR_APPROVAL_PENDING');
    expect(h.writes()).toBe(4);
    await client.close();

    const trail = (await gatehouse(['audit', 'tail', '-n', '200', '--data-dir', h.dataDir])).stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string; jobId?: string; data: Record<string, unknown> });
    const used = trail.filter((r) => r.type === 'approval.grant_used');
    expect(used).toHaveLength(3);
    expect(used.every((r) => r.data.grantId === grant.id && r.data.approvalId === id)).toBe(true);
    expect(trail.filter((r) => r.type === 'approval.grant_created' || r.type === 'approval.grant_revoked').map((r) => r.type)).toEqual(['approval.grant_created', 'approval.grant_revoked']);
  });

  it('stands in for an approval only: a policy that now denies the call, or allows it, decides it, not the grant', async () => {
    const { h, client, args, grant, rewrite } = await grantedUnderPolicyFile((effect) => `effect: ${effect}`, 'require_approval');

    rewrite('deny');
    expect(text(await client.callTool(write(args)))).toContain('GH_ERR_POLICY_DENIED');
    expect(h.writes()).toBe(1);

    rewrite('allow');
    const allowed = await client.callTool(write(args));
    expect(text(allowed)).toBe('wrote k');
    expect(allowed._meta?.['gatehouse/job']).not.toHaveProperty('grantId');
    await client.close();
    const trail = (await gatehouse(['audit', 'tail', '-n', '200', '--data-dir', h.dataDir])).stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string; data: Record<string, unknown> });
    expect(trail.filter((r) => r.type === 'approval.grant_used' && r.data.grantId === grant.id)).toHaveLength(0);
  });

  it('stops standing in once the policy asks more of the approval: a quorum of two, approvers without the granter, no self-approval', async () => {
    const { h, client, args, id, grant, rewrite } = await grantedUnderPolicyFile((options) => `effect: require_approval, approval: { ${options} }`, 'ttl: 30m');
    expect((await client.callTool(write(args)))._meta?.['gatehouse/job']).toMatchObject({ grantId: grant.id });
    expect(h.writes()).toBe(2);

    const principal = (await h.gateway.approvals.get(id))!.principal;
    for (const tightened of ['quorum: 2, approvers: [bob, carol]', 'approvers: [carol]', ...(principal === 'bob' ? ['selfApprove: false'] : [])]) {
      rewrite(tightened);
      const asked = await client.callTool(write(args));
      expect(text(asked), tightened).toContain('GH_ERR_APPROVAL_PENDING');
      await h.gateway.approvals.cancel(approvalId(asked), 'tester', 'the test withdraws it');
    }
    expect(h.writes()).toBe(2);

    // Loosened again, the same grant serves (it was never revoked).
    rewrite('approvers: [bob, carol]');
    expect((await client.callTool(write(args)))._meta?.['gatehouse/job']).toMatchObject({ grantId: grant.id });
    expect(h.writes()).toBe(3);
    await client.close();
  });

  it('covers the principal\'s other sessions with scope principal, and stops at its expiry', async () => {
    const clock = new AdvancingClock();
    const h = await harness(clock);
    const client = await connectHttp(h.url);
    const id = approvalId(await client.callTool(write({ key: 'docs/a', value: 'v' })));
    await h.gateway.approvals.approveWithGrant(id, 'bob', { condition: 'args.key.startsWith("docs/")', scope: 'principal', durationMs: HALF_HOUR });
    const other = await connectHttp(h.url);
    expect(text(await other.callTool(write({ key: 'docs/b', value: 'x' })))).toBe('wrote docs/b');
    expect(text(await other.callTool(write({ key: 'etc/passwd', value: 'x' })))).toContain('GH_ERR_APPROVAL_PENDING');
    clock.advance(HALF_HOUR + 1);
    expect(text(await other.callTool(write({ key: 'docs/c', value: 'x' })))).toContain('GH_ERR_APPROVAL_PENDING');
    expect(h.writes()).toBe(1);
    await other.close();
    await client.close();
  });

  it('refuses a grant whose condition does not compile or whose time is out of bounds, and leaves the approval pending', async () => {
    const h = await harness();
    const client = await connectHttp(h.url);
    const id = approvalId(await client.callTool(write({ key: 'k', value: 'v' })));
    await expect(h.gateway.approvals.approveWithGrant(id, 'bob', { condition: 'args.key ==', scope: 'principal', durationMs: HALF_HOUR })).rejects.toMatchObject({ code: 'GH_ERR_GRANT_INVALID' });
    await expect(h.gateway.approvals.approveWithGrant(id, 'bob', { condition: 'true', scope: 'principal', durationMs: 9 * 3_600_000 })).rejects.toMatchObject({ code: 'GH_ERR_GRANT_INVALID' });
    expect((await h.gateway.approvals.get(id))!.state).toBe('pending');
    await client.close();
  });

  it('is given, listed and revoked through the API, in the approver\'s tenant only', async () => {
    const { h, client, held, approval } = await heldForAnApprover({ key: 'api', value: 'v' });
    const shown = await api(h, `/api/approvals/${approval.id}`, { key: KEYS.approver });
    expect(shown.body.approval.grantCondition).toBe('args.key == "api" && args.value == "v"');

    const bad = await api(h, `/api/approvals/${approval.id}/approve`, { method: 'POST', key: KEYS.approver, body: { grant: { condition: 'args.key ==', scope: 'principal', durationMs: HALF_HOUR } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('GH_ERR_GRANT_INVALID');
    const given = await api(h, `/api/approvals/${approval.id}/approve`, {
      method: 'POST',
      key: KEYS.approver,
      body: { reason: 'api keys are fine', grant: { condition: 'args.key == "api"', scope: 'principal', durationMs: HALF_HOUR } },
    });
    expect(given.status).toBe(200);
    expect(given.body.grant).toMatchObject({ state: 'live', tool: 'fx__write', condition: 'args.key == "api"', scope: 'principal', grantedBy: 'alice', approvalId: approval.id });
    expect(resultText(await held)).toBe('wrote api');
    expect(resultText(await client.callTool(write({ key: 'api', value: 'other' })))).toBe('wrote api');

    const listed = await api(h, '/api/grants', { key: KEYS.approver });
    expect(listed.body.grants.map((g: { id: string }) => g.id)).toEqual([given.body.grant.id]);
    expect((await api(h, '/api/grants', { key: KEYS.otherTenant })).body.grants).toEqual([]);
    expect((await api(h, `/api/grants/${given.body.grant.id}/revoke`, { method: 'POST', key: KEYS.otherTenant })).body.error.code).toBe('GH_ERR_GRANT_NOT_FOUND');
    expect((await api(h, `/api/grants/${given.body.grant.id}/revoke`, { method: 'POST', key: KEYS.caller })).status).toBe(403);
    const revoked = await api(h, `/api/grants/${given.body.grant.id}/revoke`, { method: 'POST', key: KEYS.approver });
    expect(revoked.body.grant.state).toBe('revoked');
    expect((await api(h, '/api/grants', { key: KEYS.approver })).body.grants).toEqual([]);
    expect(resultText(await client.callTool(write({ key: 'api', value: 'third' })))).toContain('GH_ERR_APPROVAL_PENDING');
    expect(h.writes()).toBe(2);
    await client.close();
  });

  it('is given from the approval page, with the condition pre-filled from the call', async () => {
    const { h, client, held, approval } = await heldForAnApprover({ key: 'page', value: 'v' });
    const browser = new PageClient(h);
    expect((await browser.login(KEYS.approver)).status).toBe(303);
    const page = await browser.get(`/approvals/${approval.id}`);
    expect(page.html).toContain('Approve this and matching calls');
    expect(page.html).toContain('args.key == &quot;page&quot; &amp;&amp; args.value == &quot;v&quot;');
    const posted = await browser.post(`/approvals/${approval.id}`, { csrf: csrfOf(page.html), decision: 'grant', condition: 'args.key == "page"', scope: 'principal', duration: String(HALF_HOUR) });
    expect(posted.status).toBe(303);
    expect(resultText(await held)).toBe('wrote page');
    expect(resultText(await client.callTool(write({ key: 'page', value: 'again' })))).toBe('wrote page');
    expect(h.writes()).toBe(2);
    await client.close();
  });
});
