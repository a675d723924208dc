import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectHttp, startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { gatehouse } from '../helpers/cli.ts';
import { digestOf } from '../../src/protocol/digest.ts';
import { csrfOf, PageClient } from '../helpers/page-client.ts';
import { api, approverAuth, connectWithKey, heldWrite, KEYS, pendingApproval } from '../helpers/approvers.ts';

const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

async function harness(overrides = {}) {
  const h = await startHarness(overrides);
  harnesses.push(h);
  return h;
}

/** A gateway with approver keys, and a caller's held write waiting for its approval. */
async function heldForAnApprover(args?: Record<string, unknown>) {
  const h = await harness({ auth: approverAuth });
  const client = await connectWithKey(h.url, KEYS.caller);
  const held = heldWrite(client, args);
  return { h, client, held, approval: await pendingApproval(h) };
}

const texts = (result: { content: unknown }) => (result.content as { text: string }[]).map((c) => c.text);
const approvalId = (result: { _meta?: Record<string, unknown> }) => (result._meta?.['gatehouse/approval'] as { id: string }).id;
const errorCode = (result: { _meta?: Record<string, unknown> }) => (result._meta?.['gatehouse/error'] as { code: string } | undefined)?.code;
const write = { name: 'fx__write', arguments: { key: 'k', value: 'v' } };
const sideEffects = (h: Harness) => readFileSync(h.sideEffects, 'utf8').split('\n').filter(Boolean);

describe('edit, then approve', () => {
  it('runs the edited call exactly once, tells the model what changed, and audits both digests and the editor', async () => {
    const h = await harness();
    const client = await connectHttp(h.url);
    const id = approvalId(await client.callTool(write));
    // Only the changed argument is sent: the others stay as the call sent them.
    const approved = await gatehouse(['approvals', 'approve', id, '--args', '{"value":"safer"}', '--as', 'bob', '--data-dir', h.dataDir]);
    expect(approved).toMatchObject({ code: 0 });

    const ran = await client.callTool(write);
    expect(ran.isError).toBeFalsy();
    const [note, result] = texts(ran);
    expect(note).toContain('bob changed the arguments');
    expect(note).toContain('value: "v" → "safer"');
    expect(result).toBe('wrote k');
    expect(sideEffects(h)).toEqual(['k=safer']);

    // A second retry does not run it again: it is asked about anew.
    const again = await client.callTool(write);
    expect(errorCode(again)).toBe('GH_ERR_APPROVAL_PENDING');
    expect(sideEffects(h)).toEqual(['k=safer']);
    await client.close();

    const trail = (await gatehouse(['audit', 'tail', '-n', '200', '--data-dir', h.dataDir])).stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string; actor: string; data: Record<string, unknown> });
    const approvedEvent = trail.find((r) => r.type === 'approval.approved' && r.data.approvalId === id)!;
    const record = (await h.gateway.approvals.get(id))!;
    expect(approvedEvent.actor).toBe('bob');
    expect(approvedEvent.data.edited).toEqual({ argsDigest: record.argsDigest, changesDigest: record.edit!.changesDigest, changed: ['value'], by: 'bob' });
    const ranEdited = trail.filter((r) => r.type === 'job.arguments_edited');
    expect(ranEdited).toHaveLength(1);
    expect(ranEdited[0]).toMatchObject({ actor: 'bob', data: { approvalId: id, argsDigest: record.argsDigest, editedArgsDigest: digestOf({ key: 'k', value: 'safer' }), changed: ['value'], effect: 'require_approval', ruleIds: ['destructive-tools-need-approval', 'everything-else-bounded'], policySnapshot: record.policySnapshot } });
  });

  it('cannot turn a call into one the schema or the policy refuses, or one another rule holds for its own approval: the approval is used up and nothing runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-edit-policy-'));
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, `version: 2\ndefault: allow\nrules:\n  - { id: no-etc, match: { tools: [fx__write] }, when: 'args.key.startsWith("etc/")', effect: deny, reason: "not under etc" }\n  - { id: w, match: { tools: [fx__write] }, effect: require_approval }\n  - { id: big, match: { tools: [fx__write] }, when: 'args.value.size() > 20', effect: require_approval, approval: { approvers: [finance] } }\n`);
    const h = await harness({ policies: [policy] });
    const client = await connectHttp(h.url);
    const first = approvalId(await client.callTool(write));
    await h.gateway.approvals.approveWithEdit(first, 'bob', { key: 'etc/passwd' });
    const denied = await client.callTool(write);
    expect(errorCode(denied)).toBe('GH_ERR_POLICY_DENIED');

    const second = approvalId(await client.callTool(write));
    await h.gateway.approvals.approveWithEdit(second, 'bob', { value: 42 });
    expect(errorCode(await client.callTool(write))).toBe('GH_ERR_INVALID_ARGUMENTS');
    expect(h.writes()).toBe(0);

    const third = approvalId(await client.callTool(write));
    await expect(h.gateway.approvals.approveWithEdit(third, 'bob', ['not', 'an', 'object'])).rejects.toMatchObject({ code: 'GH_ERR_APPROVAL_EDIT_INVALID' });
    await expect(h.gateway.approvals.approveWithEdit(third, 'bob', {})).rejects.toMatchObject({ code: 'GH_ERR_APPROVAL_EDIT_INVALID' });
    expect((await h.gateway.approvals.get(third))!.state).toBe('pending');

    // Edited into a call rule `big` holds for finance: bob's approval under `w` does not cover it.
    await h.gateway.approvals.approveWithEdit(third, 'bob', { value: 'x'.repeat(40) });
    expect(errorCode(await client.callTool(write))).toBe('GH_ERR_APPROVAL_MISMATCH');
    expect(h.writes()).toBe(0);
    await client.close();
  });

  it("decides the edited call on the session's facts: an edit a session-aware rule refuses in a labelled session runs in a clean one", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-edit-session-'));
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      [
        'version: 2',
        'default: allow',
        'rules:',
        '  - { id: private, match: { tools: [fx__echo] }, labels: [private-data] }',
        `  - { id: no-public-after-private, match: { tools: [fx__write] }, when: '"private-data" in session.labels && args.key.startsWith("public/")', effect: deny, reason: "private data may not be published" }`,
        '  - { id: w, match: { tools: [fx__write] }, effect: require_approval }',
        '',
      ].join('\n'),
    );
    const h = await harness({ policies: [policy] });
    const tainted = await connectHttp(h.url);
    const clean = await connectHttp(h.url);
    await tainted.callTool({ name: 'fx__echo', arguments: { text: 'a private record' } });
    // One after the other: an approval is bound to the principal's call, not to its session.
    const editedToPublic = async (client: typeof clean) => {
      await h.gateway.approvals.approveWithEdit(approvalId(await client.callTool(write)), 'bob', { key: 'public/k' });
      return client.callTool(write);
    };
    expect(errorCode(await editedToPublic(tainted))).toBe('GH_ERR_POLICY_DENIED');
    expect(h.writes()).toBe(0);
    expect(texts(await editedToPublic(clean)).at(-1)).toBe('wrote public/k');
    expect(sideEffects(h)).toEqual(['public/k=v']);
    await Promise.all([tainted.close(), clean.close()]);
  });

  it('takes the edit through the API, and a held call completes with the edited arguments', async () => {
    const { h, client, held, approval } = await heldForAnApprover();
    const answer = await api(h, `/api/approvals/${approval.id}/approve`, { method: 'POST', key: KEYS.approver, body: { args: { value: 'from-api' } } });
    expect(answer.status).toBe(200);
    expect(answer.body.approval.edit).toMatchObject({ by: 'alice', changes: { value: 'from-api' } });
    const ran = await held;
    expect(texts(ran)[0]).toContain('alice changed the arguments');
    expect(sideEffects(h)).toEqual(['k=from-api']);
    await client.close();
  });

  it('takes the edit from the approval page', async () => {
    const { h, client, held, approval } = await heldForAnApprover();
    const browser = new PageClient(h);
    expect((await browser.login(KEYS.approver)).status).toBe(303);
    const page = await browser.get(`/approvals/${approval.id}`);
    expect(page.html).toContain('Change the arguments, then approve');
    const bad = await browser.post(`/approvals/${approval.id}`, { csrf: csrfOf(page.html), decision: 'edit', changes: '{not json' });
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('GH_ERR_APPROVAL_EDIT_INVALID');
    const posted = await browser.post(`/approvals/${approval.id}`, { csrf: csrfOf(bad.html), decision: 'edit', changes: '{"value": "from-page"}' });
    expect(posted.status).toBe(303);
    expect(texts(await held)[0]).toContain('alice changed the arguments');
    expect(sideEffects(h)).toEqual(['k=from-page']);
    await client.close();
  });
});
