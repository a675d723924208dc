import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AdvancingClock, connectHttp, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { gatehouse } from '../helpers/cli.ts';

const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

async function harness(overrides = {}, clock?: AdvancingClock) {
  const h = await startHarness(overrides, { clock });
  harnesses.push(h);
  return h;
}

const text = (result: { content: unknown }) => (result.content as { text: string }[])[0].text;
const approvalId = (result: { _meta?: Record<string, unknown> }) => (result._meta?.['gatehouse/approval'] as { id: string }).id;
const write = { name: 'fx__write', arguments: { key: 'k', value: 'v' } };

describe('approvals, end to end', () => {
  it('pends a destructive call, lets the CLI approve it from another process, then runs the retry exactly once', async () => {
    const h = await harness();
    const client = await connectHttp(h.url);
    const pending = await client.callTool(write);
    expect(pending.isError).toBe(true);
    expect(text(pending)).toContain('GH_ERR_APPROVAL_PENDING');
    const id = approvalId(pending);
    expect(text(pending)).toContain(`gatehouse approvals approve ${id}`);
    expect(h.writes()).toBe(0);

    const listed = await gatehouse(['approvals', 'list', '--data-dir', h.dataDir]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(id);
    const approved = await gatehouse(['approvals', 'approve', id, '--reason', 'looks fine', '--as', 'bob', '--data-dir', h.dataDir]);
    expect(approved).toMatchObject({ code: 0 });

    const ran = await client.callTool(write);
    expect(ran.isError).toBeFalsy();
    expect(text(ran)).toBe('wrote k');
    expect(h.writes()).toBe(1);

    const again = await client.callTool(write);
    expect(text(again)).toContain('GH_ERR_APPROVAL_PENDING');
    expect(approvalId(again)).not.toBe(id);
    expect(h.writes()).toBe(1);
    await client.close();
  });

  it('does not let a retry with other arguments use the approval', async () => {
    const h = await harness();
    const client = await connectHttp(h.url);
    const id = approvalId(await client.callTool(write));
    await h.gateway.approvals.approve(id, 'bob');
    const other = await client.callTool({ name: 'fx__write', arguments: { key: 'k', value: 'other' } });
    expect(text(other)).toContain('GH_ERR_APPROVAL_PENDING');
    expect(h.writes()).toBe(0);
    await client.close();
  });

  it('runs only one of many concurrent identical retries', async () => {
    const h = await harness();
    const client = await connectHttp(h.url);
    const id = approvalId(await client.callTool(write));
    await h.gateway.approvals.approve(id, 'bob');
    const results = await Promise.all(Array.from({ length: 5 }, () => client.callTool(write)));
    expect(results.filter((r) => !r.isError)).toHaveLength(1);
    expect(h.writes()).toBe(1);
    await client.close();
  });

  it('answers a denied approval with isError and the reason, and never runs the call', async () => {
    const h = await harness();
    const client = await connectHttp(h.url);
    const id = approvalId(await client.callTool(write));
    expect((await gatehouse(['approvals', 'deny', id, '--reason', 'not today', '--data-dir', h.dataDir])).code).toBe(0);
    const denied = await client.callTool(write);
    expect(denied.isError).toBe(true);
    expect(text(denied)).toContain('GH_ERR_APPROVAL_DENIED');
    expect(text(denied)).toContain('not today');
    expect(h.writes()).toBe(0);
    await client.close();
  });

  it('expires an approval nobody answered, and the expiry means deny', async () => {
    const clock = new AdvancingClock();
    const h = await harness({}, clock);
    const client = await connectHttp(h.url);
    const id = approvalId(await client.callTool(write));
    clock.advance(h.gateway.config.approvals.ttl + 1); // its 15 minutes pass
    const expired = await client.callTool(write);
    expect(text(expired)).toContain('GH_ERR_APPROVAL_EXPIRED');
    expect((await gatehouse(['approvals', 'approve', id, '--data-dir', h.dataDir])).code).toBe(1);
    expect(h.writes()).toBe(0);
    await client.close();
  });

  it('consumes the approval just before dispatch: if the upstream then fails, the next identical call asks again', async () => {
    // README: '"Exactly once" means an approved call never runs twice: the approval is consumed just before dispatch,
    // and if the upstream then fails, the next call asks again.'
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-crash-'));
    writeFileSync(join(dir, 'policy.yaml'), 'version: 2\ndefault: allow\nrules:\n  - { id: c, match: { tools: [fx__crash] }, effect: require_approval }\n');
    const h = await harness({ policies: [dir] });
    const client = await connectHttp(h.url);
    const crash = { name: 'fx__crash', arguments: {} };
    const id = approvalId(await client.callTool(crash));
    await h.gateway.approvals.approve(id, 'bob');
    const failed = await client.callTool(crash);
    expect(text(failed)).toContain('GH_ERR_UPSTREAM_UNAVAILABLE');
    expect((await h.gateway.approvals.get(id))?.state).toBe('consumed');
    const again = await client.callTool(crash);
    expect(text(again)).toContain('GH_ERR_APPROVAL_PENDING');
    expect(approvalId(again)).not.toBe(id);
    await client.close();
  });

  it("takes the approval's lifetime from the rule's approval.ttl when the policy sets one", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-ttl-'));
    writeFileSync(
      join(dir, 'policy.yaml'),
      'version: 2\ndefault: allow\nrules:\n  - { id: w, match: { tools: [fx__write] }, effect: require_approval, approval: { ttl: 2m } }\n  - { id: w2, match: { tools: [fx__write] }, effect: require_approval, approval: { ttl: 90s } }\n',
    );
    const h = await harness({ policies: [dir] });
    const client = await connectHttp(h.url);
    const id = approvalId(await client.callTool(write));
    const approval = await h.gateway.approvals.get(id);
    expect(approval!.expiresAt - approval!.createdAt).toBe(90_000); // the shortest of the matching rules
    await client.close();
  });

  it('holds a call that sent a progress token, reports progress, and completes it once approved', async () => {
    const h = await harness();
    const client = await connectHttp(h.url);
    const progress: string[] = [];
    const call = client.callTool(write, { onprogress: (p: { message?: string }) => progress.push(p.message ?? '') } as never);
    await waitFor(async () => (await h.gateway.approvals.list('pending')).length === 1, 'the approval to be created');
    const [approval] = await h.gateway.approvals.list('pending');
    await waitFor(() => progress.length > 0, 'the first progress notification');
    expect(progress[0]).toContain(`Waiting for approval ${approval.id}`);
    await h.gateway.approvals.approve(approval.id, 'bob');
    const result = await call;
    expect(text(result)).toBe('wrote k');
    expect(h.writes()).toBe(1);
    await client.close();
  });

  it('returns the pending result when the hold budget runs out', async () => {
    const h = await harness({ approvals: { ttl: 60_000, holdBudget: 300 } });
    const client = await connectHttp(h.url);
    const result = await client.callTool(write, { onprogress: () => undefined } as never);
    expect(text(result)).toContain('GH_ERR_APPROVAL_PENDING');
    expect(h.writes()).toBe(0);
    await client.close();
  });

  it('withdraws the approval when the client cancels a held call', async () => {
    const h = await harness();
    const client = await connectHttp(h.url);
    const controller = new AbortController();
    const call = client.callTool(write, { onprogress: () => undefined, signal: controller.signal } as never);
    await waitFor(async () => (await h.gateway.approvals.list('pending')).length === 1, 'the approval to be created');
    const [approval] = await h.gateway.approvals.list('pending');
    controller.abort('changed my mind');
    await expect(call).rejects.toBeDefined();
    await waitFor(async () => (await h.gateway.approvals.get(approval.id))?.state === 'cancelled', 'the approval to be withdrawn');
    expect(h.writes()).toBe(0);
    await client.close();
  });

  it('keeps a pending approval across a restart of Gatehouse', async () => {
    const first = await startHarness();
    let client = await connectHttp(first.url);
    const id = approvalId(await client.callTool(write));
    await client.close();
    await first.close();

    const second = await harness({ dataDir: first.dataDir });
    expect((await gatehouse(['approvals', 'show', id, '--data-dir', first.dataDir])).stdout).toContain('pending');
    expect((await gatehouse(['approvals', 'approve', id, '--data-dir', first.dataDir])).code).toBe(0);
    client = await connectHttp(second.url);
    expect(text(await client.callTool(write))).toBe('wrote k');
    expect(second.writes()).toBe(1);
    await client.close();
  });
});
