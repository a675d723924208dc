import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { defaultConfig } from '../../src/config/load.ts';
import type { GatehouseConfig } from '../../src/config/schema.ts';
import { AdvancingClock, auditOf, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { api, approverAuth, connectWithKey, heldWrite, KEYS, pendingApproval, resultText } from '../helpers/approvers.ts';
import { codeOn, PageClient, type PageAnswer } from '../helpers/page-client.ts';
import { webhookReceiver, type Received } from '../helpers/webhook-receiver.ts';
import { recordingLogger } from '../helpers/capturing-log.ts';
import { gatehouse } from '../helpers/cli.ts';

// The approve and deny links of a webhook notice, used as a phone would: the notice from a real webhook
// receiver, the link's page fetched over real HTTP, its button posted like a browser posts a form.

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of cleanups.splice(0)) await close();
});

type Webhook = NonNullable<GatehouseConfig['approvals']['webhook']>;

interface Setup {
  h: Harness;
  client: Client;
  received: Received[];
  log: ReturnType<typeof recordingLogger>;
}

async function setup(options: { webhook?: Partial<Webhook>; policy?: string; clock?: AdvancingClock } = {}): Promise<Setup> {
  const receiver = await webhookReceiver();
  cleanups.unshift(() => receiver.close());
  const log = recordingLogger();
  const webhook: Webhook = { url: receiver.url, headers: {}, format: 'plain', links: true, actAs: 'webhook', ...options.webhook };
  const h = await startHarness(
    { auth: approverAuth, approvals: { ...defaultConfig().approvals, webhook }, ...(options.policy ? { policies: [policyDir(options.policy)] } : {}) },
    { clock: options.clock, log },
  );
  cleanups.unshift(() => h.close());
  const client = await connectWithKey(h.url, KEYS.caller);
  cleanups.unshift(() => client.close());
  return { h, client, received: receiver.received, log };
}

function policyDir(approval: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-link-policy-'));
  writeFileSync(join(dir, 'policy.yaml'), `version: 2\ndefault: allow\nrules:\n  - { id: w, match: { tools: [fx__write] }, effect: require_approval, reason: writes, approval: ${approval} }\n`);
  return dir;
}

/** The `approval.created` notice of an approval, once the webhook received it. */
async function createdNotice(received: Received[], id: string): Promise<any> {
  const find = () => received.find((r) => r.body.event === 'approval.created' && r.body.approval.id === id);
  await waitFor(() => find() !== undefined, 'the created notice');
  return find()!.body;
}

/** A link as a path on the harness (the links are absolute, on the gateway's address). */
const pathOf = (link: string) => {
  const url = new URL(link);
  return `${url.pathname}${url.search}`;
};

const tokenOf = (link: string) => new URL(link).searchParams.get('token')!;

/** Presses the link page's button: a form post of the token to the link's path, as a browser sends it. */
function press(h: Harness, link: string, token = tokenOf(link)): Promise<PageAnswer> {
  return new PageClient(h).post(new URL(link).pathname, { token, decision: 'x' });
}

/** Opens the link, then presses its button (with `token`, the link's own by default): both refused alike, and no button shown. */
async function expectRefused(h: Harness, link: string, status: number, code: string, token = tokenOf(link)): Promise<void> {
  const shown = await new PageClient(h).get(`${new URL(link).pathname}?token=${encodeURIComponent(token)}`);
  const pressed = await press(h, link, token);
  for (const answer of [shown, pressed]) {
    expect(answer.status, token).toBe(status);
    expect(codeOn(answer)).toBe(code);
    expect(answer.html).not.toContain('name="token"');
  }
}

describe('approval links in webhook notices', () => {
  it('approve once as actAs: a GET only asks, the POST approves, and a second use of either link is refused', async () => {
    const { h, client, received, log } = await setup();
    const held = heldWrite(client);
    const approval = await pendingApproval(h);
    const notice = await createdNotice(received, approval.id);
    const { approve, deny } = notice.approval.actions;
    const page = h.gateway.approvalLinks.url(approval.id);
    expect(approve).toMatch(new RegExp(`^${page}/link\\?token=approve\\.[\\w-]{43}$`));
    expect(deny).toMatch(new RegExp(`^${page}/link\\?token=deny\\.[\\w-]{43}$`));
    expect(notice.text).toContain(`Approve: ${approve} Deny: ${deny}`);

    // Link previewers and scanners fetch the URL, maybe more than once: that decides nothing.
    const browser = new PageClient(h);
    for (let i = 0; i < 2; i++) {
      const ask = await browser.get(pathOf(approve));
      expect(ask.status).toBe(200);
      expect(ask.html).toContain('Approve fx__write?');
      expect(ask.html).toContain(approval.reason);
      // The button posts to the link's own path, the token in the body: `link` relative to /approvals/<id>/link.
      expect(ask.html).toContain(`<form class="card" method="post" action="link"><input type="hidden" name="token" value="${tokenOf(approve)}">`);
      expect(ask.html).not.toContain('<script');
      expect(ask.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(ask.headers.get('referrer-policy')).toBe('no-referrer');
    }
    expect((await h.gateway.approvals.get(approval.id))?.state).toBe('pending');
    expect(h.writes()).toBe(0);

    // No sign-in: the token is the credential.
    const done = await press(h, approve);
    expect(done.status).toBe(200);
    expect(done.html).toContain('Approved: fx__write');
    expect(resultText(await held)).toBe('wrote k');
    expect(h.writes()).toBe(1);
    const record = await h.gateway.approvals.get(approval.id);
    expect(record?.history.find((t) => t.state === 'approved')).toMatchObject({ actor: 'webhook', via: 'link' });
    expect((await gatehouse(['approvals', 'show', approval.id, '--data-dir', h.dataDir])).stdout).toMatch(/approved\s+by webhook \(by link\)/);
    await waitFor(async () => (await auditOf(h.dataDir, 'default')).some((r) => r.type === 'approval.approved'), 'the approval in the audit');
    const audit = await auditOf(h.dataDir, 'default');
    expect(audit.find((r) => r.type === 'approval.approved')).toMatchObject({ actor: 'webhook', data: { approvalId: approval.id, via: 'link' } });
    expect(JSON.stringify(audit)).not.toContain(tokenOf(approve).split('.')[1]);
    await waitFor(() => received.some((r) => r.body.event === 'approval.approved'), 'the approved notice');
    expect(received.find((r) => r.body.event === 'approval.approved')!.body.text).toContain('Approved by webhook (by link): fx__write');

    // Used: the same link again, the other link, the page, and the JSON variant all say so.
    for (const answer of [await press(h, approve), await press(h, deny), await browser.get(pathOf(approve))]) {
      expect(answer.status).toBe(410);
      expect(codeOn(answer)).toBe('GH_ERR_APPROVAL_LINK_USED');
      expect(answer.html).not.toContain('name="token"');
    }
    const json = await api(h, `/api/approvals/${approval.id}/link`, { method: 'POST', body: { token: tokenOf(approve) } });
    expect(json.status).toBe(410);
    expect(json.body.error.code).toBe('GH_ERR_APPROVAL_LINK_USED');
    expect(h.writes()).toBe(1);
    // The token is the credential: never in a log line (nor, above, in the audit).
    expect(log.lines.length).toBeGreaterThan(0);
    expect(JSON.stringify(log.lines)).not.toContain(tokenOf(approve).split('.')[1]);
    expect(JSON.stringify(log.lines)).not.toContain(tokenOf(deny).split('.')[1]);
  });

  it('acts once when both links are pressed at the same moment', async () => {
    const { h, client, received } = await setup();
    const held = heldWrite(client);
    const approval = await pendingApproval(h);
    const { approve, deny } = (await createdNotice(received, approval.id)).approval.actions;
    const answers = await Promise.all([press(h, approve), press(h, deny), press(h, approve), press(h, deny)]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 410, 410, 410]);
    const decided = (await h.gateway.approvals.get(approval.id))!.history.filter((t) => t.via === 'link');
    expect(decided).toHaveLength(1);
    await held;
    expect(h.writes()).toBe(decided[0].state === 'approved' ? 1 : 0);
  });

  it('deny by link: the held call is refused and nothing runs', async () => {
    const { h, client, received } = await setup();
    const held = heldWrite(client);
    const approval = await pendingApproval(h);
    const { deny } = (await createdNotice(received, approval.id)).approval.actions;
    const ask = await new PageClient(h).get(pathOf(deny));
    expect(ask.html).toContain('Deny fx__write?');
    expect((await press(h, deny)).status).toBe(200);
    const result = await held;
    expect(result.isError).toBe(true);
    expect(resultText(result)).toContain('GH_ERR_APPROVAL_DENIED');
    expect((await h.gateway.approvals.get(approval.id))?.history.at(-1)).toMatchObject({ state: 'denied', actor: 'webhook', via: 'link' });
    expect(h.writes()).toBe(0);
  });

  it("refuses a tampered token, another approval's token and the other action's signature (403), acting on nothing", async () => {
    const { h, client, received } = await setup();
    const heldA = heldWrite(client, { key: 'a', value: 'v' });
    const a = await pendingApproval(h);
    const heldB = heldWrite(client, { key: 'b', value: 'v' });
    await waitFor(async () => (await h.gateway.approvals.list('pending')).length === 2, 'the second approval');
    const b = (await h.gateway.approvals.list('pending')).find((r) => r.id !== a.id)!;
    const linksA = (await createdNotice(received, a.id)).approval.actions;
    const tokenA = tokenOf(linksA.approve);
    const signature = tokenA.split('.')[1];
    const flipped = `approve.${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
    const linkB = h.gateway.approvalLinks.url(b.id)!;

    const attempts = [
      { link: `${linkB}/link?token=${tokenA}`, token: tokenA }, // A's token on B
      { link: linksA.approve, token: flipped }, // one character changed
      { link: linksA.approve, token: `deny.${signature}` }, // the approve signature claiming to deny
      { link: linksA.approve, token: 'approve' }, // no signature at all
    ];
    for (const { link, token } of attempts) await expectRefused(h, link, 403, 'GH_ERR_APPROVAL_LINK_INVALID', token);
    // An id that does not exist is refused the same way: a bad token learns nothing about which approvals exist.
    expect((await press(h, h.gateway.approvalLinks.url('apr_nope') + '/link', tokenA)).status).toBe(403);
    expect((await h.gateway.approvals.list('pending')).map((r) => r.id).sort()).toEqual([a.id, b.id].sort());

    // A's own link still works, once: none of the refusals above used it up.
    expect((await press(h, linksA.approve)).status).toBe(200);
    expect(resultText(await heldA)).toBe('wrote a');
    await api(h, `/api/approvals/${b.id}/deny`, { method: 'POST', key: KEYS.approver });
    await heldB;
  });

  it("refuses an expired approval's link (410) and runs nothing", async () => {
    const clock = new AdvancingClock();
    const { h, client, received } = await setup({ clock });
    const held = heldWrite(client);
    const approval = await pendingApproval(h);
    const { approve } = (await createdNotice(received, approval.id)).approval.actions;
    clock.advance(h.gateway.config.approvals.ttl + 1);
    await expectRefused(h, approve, 410, 'GH_ERR_APPROVAL_EXPIRED');
    expect((await h.gateway.approvals.get(approval.id))?.state).toBe('expired');
    expect(resultText(await held)).toContain('GH_ERR_APPROVAL_EXPIRED');
    expect(h.writes()).toBe(0);
  });

  it("holds the link to the approval's rules: approvers that leave out actAs refuse it (403) and the audit names it", async () => {
    const { h, client, received } = await setup({ policy: '{ approvers: [alice] }' });
    const held = heldWrite(client);
    const approval = await pendingApproval(h);
    const { approve } = (await createdNotice(received, approval.id)).approval.actions;
    await expectRefused(h, approve, 403, 'GH_ERR_APPROVER_NOT_ALLOWED');
    expect((await h.gateway.approvals.get(approval.id))?.state).toBe('pending');
    const refusedRecords = async () => (await auditOf(h.dataDir, 'default')).filter((r) => r.type === 'approval.refused_approver');
    await waitFor(async () => (await refusedRecords()).length > 0, 'the refusal in the audit');
    const refused = await refusedRecords();
    expect(refused).toEqual([expect.objectContaining({ actor: 'webhook', data: expect.objectContaining({ code: 'GH_ERR_APPROVER_NOT_ALLOWED', via: 'link' }) })]);
    // alice still decides as usual.
    expect((await api(h, `/api/approvals/${approval.id}/approve`, { method: 'POST', key: KEYS.approver })).status).toBe(200);
    expect(resultText(await held)).toBe('wrote k');
  });

  it('counts a link as one approver toward a quorum, and refuses self-approval when actAs is the caller', async () => {
    const quorum = await setup({ policy: '{ quorum: 2 }' });
    const held = heldWrite(quorum.client);
    const approval = await pendingApproval(quorum.h);
    const { approve } = (await createdNotice(quorum.received, approval.id)).approval.actions;
    const voted = await press(quorum.h, approve);
    expect(voted.status).toBe(200);
    expect(voted.html).toContain('1 of 2');
    expect((await quorum.h.gateway.approvals.get(approval.id))?.state).toBe('pending');
    expect((await api(quorum.h, `/api/approvals/${approval.id}/approve`, { method: 'POST', key: KEYS.approver })).body.approval.state).toBe('approved');
    expect(resultText(await held)).toBe('wrote k');

    const self = await setup({ policy: '{ selfApprove: false }', webhook: { actAs: 'agent' } });
    const heldSelf = heldWrite(self.client);
    const own = await pendingApproval(self.h);
    const links = (await createdNotice(self.received, own.id)).approval.actions;
    const pressed = await press(self.h, links.approve);
    expect(pressed.status).toBe(403);
    expect(codeOn(pressed)).toBe('GH_ERR_SELF_APPROVAL_FORBIDDEN');
    await api(self.h, `/api/approvals/${own.id}/deny`, { method: 'POST', key: KEYS.approver });
    await heldSelf;
  });

  it('answers the JSON variant with the approval, and with coded errors', async () => {
    const { h, client, received } = await setup();
    const held = heldWrite(client);
    const approval = await pendingApproval(h);
    const { approve } = (await createdNotice(received, approval.id)).approval.actions;
    const bad = await api(h, `/api/approvals/${approval.id}/link`, { method: 'POST', body: { token: 'approve.x' } });
    expect(bad.status).toBe(403);
    expect(bad.body.error.code).toBe('GH_ERR_APPROVAL_LINK_INVALID');
    const ok = await api(h, `/api/approvals/${approval.id}/link`, { method: 'POST', body: { token: tokenOf(approve) } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ action: 'approve', actAs: 'webhook', approval: { id: approval.id, state: 'approved' } });
    expect(resultText(await held)).toBe('wrote k');
  });

  it('sends no links with links: false, and serves none', async () => {
    const { h, client, received } = await setup({ webhook: { links: false } });
    const held = heldWrite(client);
    const approval = await pendingApproval(h);
    const notice = await createdNotice(received, approval.id);
    expect(notice.approval.actions).toBeUndefined();
    expect(notice.text).not.toContain('token=');
    // No such route: the front's own answer to an unknown path (401 with API keys configured).
    const none = await new PageClient(h).get(`/approvals/${approval.id}/link?token=approve.x`);
    expect([401, 404]).toContain(none.status);
    expect(none.html).not.toContain('name="token"');
    await api(h, `/api/approvals/${approval.id}/deny`, { method: 'POST', key: KEYS.approver });
    await held;
  });
});

describe('the Slack format', () => {
  it('sends { text, blocks }: who, tool, reason and argument summary, and Approve/Deny URL buttons; never the arguments', async () => {
    const { h, client, received } = await setup({ webhook: { format: 'slack' } });
    const held = heldWrite(client, { key: 'notes/today.txt', value: `first words <b>${'x'.repeat(200)}TAIL-OF-THE-ARGUMENT` });
    const approval = await pendingApproval(h);
    await waitFor(() => received.length === 1, 'the created message');
    const message = received[0].body;
    expect(Object.keys(message).sort()).toEqual(['blocks', 'text']);
    expect(message.text).toContain('Approval needed: agent wants to run fx__write on fx');
    const [who, details, actions] = message.blocks;
    expect(who).toEqual({ type: 'section', text: { type: 'mrkdwn', text: '*Approval needed*: agent wants to run `fx__write` on fx (tenant default)' } });
    const fields = details.fields.map((f: { text: string }) => f.text);
    expect(fields[0]).toBe('*Reason*\nthe tool is marked destructive');
    expect(fields[1]).toContain('notes/today.txt');
    expect(fields[1]).toContain('first words &lt;b&gt;');
    expect(JSON.stringify(message)).not.toContain('TAIL-OF-THE-ARGUMENT');
    const links = h.gateway.approvalLinks.url(approval.id)!;
    expect(actions.type).toBe('actions');
    expect(actions.elements).toEqual([
      { type: 'button', action_id: 'approve', text: { type: 'plain_text', text: 'Approve' }, url: expect.stringMatching(/\/link\?token=approve\./), style: 'primary' },
      { type: 'button', action_id: 'deny', text: { type: 'plain_text', text: 'Deny' }, url: expect.stringMatching(/\/link\?token=deny\./), style: 'danger' },
      { type: 'button', action_id: 'open', text: { type: 'plain_text', text: 'Open the approval' }, url: links },
    ]);
    // The button's link is a working one.
    expect((await press(h, actions.elements[0].url)).status).toBe(200);
    expect(resultText(await held)).toBe('wrote notes/today.txt');
    await waitFor(() => received.length === 2, 'the approved message');
    expect(received[1].body.blocks[0].text.text).toContain('Approved by webhook (by link)');
    expect(received[1].body.blocks.at(-1).elements.map((e: { action_id: string }) => e.action_id)).toEqual(['open']);
  }, 30_000);
});
