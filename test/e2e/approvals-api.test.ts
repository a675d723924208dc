import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AdvancingClock, startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { api, approverAuth, connectWithKey, heldWrite, KEYS, pendingApproval, resultText } from '../helpers/approvers.ts';
import { codeOn, csrfOf, PageClient, type PageAnswer } from '../helpers/page-client.ts';
import type { Client } from '@modelcontextprotocol/client';

const harnesses: Harness[] = [];
const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

async function harness(overrides = {}, clock?: AdvancingClock): Promise<Harness> {
  const h = await startHarness({ auth: approverAuth, ...overrides }, { clock });
  harnesses.push(h);
  return h;
}

async function caller(h: Harness, key: string | undefined = KEYS.caller): Promise<Client> {
  const client = await connectWithKey(h.url, key);
  clients.push(client);
  return client;
}

function policy(rule: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-approver-policy-'));
  writeFileSync(join(dir, 'policy.yaml'), `version: 2\ndefault: allow\nrules:\n  - { id: w, match: { tools: [fx__write] }, effect: require_approval, ${rule} }\n`);
  return dir;
}

const XSS = '<script>alert(1)</script><img src=x onerror=alert(2)>';

describe('the approvals API', () => {
  it('lets in only approver keys: 401 without a key, 403 for a key without the role', async () => {
    const h = await harness();
    const held = heldWrite(await caller(h));
    const approval = await pendingApproval(h);

    const none = await api(h, '/api/approvals');
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('GH_ERR_UNAUTHORIZED');
    expect((await api(h, '/api/approvals', { key: 'not-a-key-of-this-server-000' })).body.error.code).toBe('GH_ERR_UNAUTHORIZED');
    const noRole = await api(h, `/api/approvals/${approval.id}/approve`, { method: 'POST', key: KEYS.caller });
    expect(noRole.status).toBe(403);
    expect(noRole.body.error.code).toBe('GH_ERR_FORBIDDEN');

    const listed = await api(h, '/api/approvals', { key: KEYS.approver });
    expect(listed.status).toBe(200);
    expect(listed.body.approvals.map((a: { id: string }) => a.id)).toEqual([approval.id]);
    expect(listed.body.approvals[0]).toMatchObject({ state: 'pending', principal: 'agent', tenant: 'default', server: 'fx', tool: 'fx__write', url: expect.stringMatching(new RegExp(`/approvals/${approval.id}$`)) });
    // The one page URL: the same link the caller's result and the webhook carry, whatever Host the API was asked at.
    expect(listed.body.approvals[0].url).toBe(h.gateway.approvalLinks.url(approval.id));
    expect(listed.headers.get('cache-control')).toBe('no-store');
    expect((await api(h, '/api/approvals/', { key: KEYS.approver })).body).toEqual(listed.body);
    expect((await api(h, `/api/approvals/${approval.id}`, { key: KEYS.approver })).body.approval.id).toBe(approval.id);
    expect((await api(h, `/api/approvals/${approval.id}`, { headers: { 'x-api-key': KEYS.approver } })).status).toBe(200);

    await h.gateway.approvals.deny(approval.id, 'test', 'cleanup');
    await held;
    expect(h.writes()).toBe(0);
  });

  it('approves a held call: the call completes with the upstream result, once, and the history names the approver', async () => {
    const h = await harness();
    const held = heldWrite(await caller(h));
    const approval = await pendingApproval(h);

    const approved = await api(h, `/api/approvals/${approval.id}/approve`, { method: 'POST', key: KEYS.approver, body: { reason: 'looks fine' } });
    expect(approved.status).toBe(200);
    expect(approved.body.approval.state).toBe('approved');
    expect(approved.body.approval.history.at(-1)).toMatchObject({ state: 'approved', actor: 'alice', reason: 'looks fine' });
    expect(resultText(await held)).toBe('wrote k');
    expect(h.writes()).toBe(1);

    const again = await api(h, `/api/approvals/${approval.id}/approve`, { method: 'POST', key: KEYS.approver });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('GH_ERR_APPROVAL_INVALID_STATE');
    expect((await api(h, '/api/approvals', { key: KEYS.approver })).body.approvals).toEqual([]);
    expect((await api(h, '/api/approvals?state=all', { key: KEYS.approver })).body.approvals[0].state).toBe('consumed');
    expect(h.writes()).toBe(1);
  });

  it('denies a held call: it answers with the denial and never runs', async () => {
    const h = await harness();
    const held = heldWrite(await caller(h));
    const approval = await pendingApproval(h);
    const denied = await api(h, `/api/approvals/${approval.id}/deny`, { method: 'POST', key: KEYS.approver, body: { reason: 'not today' } });
    expect(denied.status).toBe(200);
    expect(denied.body.approval.state).toBe('denied');
    const result = await held;
    expect(result.isError).toBe(true);
    expect(resultText(result)).toContain('GH_ERR_APPROVAL_DENIED');
    expect(h.writes()).toBe(0);
  });

  it("answers 404 for an unknown approval, 403 for another tenant's, 409 for an expired one", async () => {
    const clock = new AdvancingClock();
    const h = await harness({}, clock);
    const client = await caller(h);
    const held = heldWrite(client);
    const approval = await pendingApproval(h);

    expect((await api(h, '/api/approvals/apr_NOPE', { key: KEYS.approver })).status).toBe(404);
    expect((await api(h, '/api/approvals/apr_NOPE/approve', { method: 'POST', key: KEYS.approver })).body.error.code).toBe('GH_ERR_APPROVAL_NOT_FOUND');
    const foreign = await api(h, `/api/approvals/${approval.id}/approve`, { method: 'POST', key: KEYS.otherTenant });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.code).toBe('GH_ERR_FORBIDDEN');
    expect(await api(h, `/api/approvals/${approval.id}`, { key: KEYS.otherTenant })).toMatchObject({ status: 403, body: { error: { code: 'GH_ERR_FORBIDDEN' } } });
    expect((await api(h, '/api/approvals?state=all', { key: KEYS.otherTenant })).body.approvals).toEqual([]);

    // Its lifetime passes (the gateway's clock moves on, and its expiry sweep runs): the hold ends with it.
    clock.advance(h.gateway.config.approvals.ttl + 1);
    await h.gateway.approvals.expireDue();
    expect(resultText(await held)).toContain('GH_ERR_APPROVAL_EXPIRED');
    const late = await api(h, `/api/approvals/${approval.id}/approve`, { method: 'POST', key: KEYS.approver });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('GH_ERR_APPROVAL_EXPIRED');
    expect(h.writes()).toBe(0);
  });

  it("passes the service's refusals on as 403 with their code, and nothing changes", async () => {
    const h = await harness({ policies: [policy('approval: { approvers: [bob] }')] });
    const held = heldWrite(await caller(h));
    const approval = await pendingApproval(h);
    const refused = await api(h, `/api/approvals/${approval.id}/approve`, { method: 'POST', key: KEYS.approver });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('GH_ERR_APPROVER_NOT_ALLOWED');
    expect((await h.gateway.approvals.get(approval.id))?.state).toBe('pending');
    await h.gateway.approvals.deny(approval.id, 'bob');
    await held;
  });

  it('refuses self-approval when the policy says so', async () => {
    const keys = { apiKeys: [...approverAuth.apiKeys, { key: 'approver-and-caller-0123456789', principal: 'carol', tenant: 'default', roles: ['approver' as const] }] };
    const h = await harness({ auth: keys, policies: [policy('approval: { selfApprove: false }')] });
    const held = heldWrite(await caller(h, 'approver-and-caller-0123456789'));
    const approval = await pendingApproval(h);
    const refused = await api(h, `/api/approvals/${approval.id}/approve`, { method: 'POST', key: 'approver-and-caller-0123456789' });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('GH_ERR_SELF_APPROVAL_FORBIDDEN');
    expect((await api(h, `/api/approvals/${approval.id}/approve`, { method: 'POST', key: KEYS.approver })).status).toBe(200);
    expect(resultText(await held)).toBe('wrote k');
  });

  it('checks what it is sent: the state filter, the reason, and only JSON bodies', async () => {
    const h = await harness();
    const held = heldWrite(await caller(h));
    const approval = await pendingApproval(h);
    const path = `/api/approvals/${approval.id}/approve`;
    expect((await api(h, '/api/approvals?state=bogus', { key: KEYS.approver })).body.error.code).toBe('GH_ERR_INVALID_REQUEST');
    expect((await api(h, path, { method: 'POST', key: KEYS.approver, body: { reason: 42 } })).status).toBe(400);
    expect((await api(h, path, { method: 'POST', key: KEYS.approver, body: { reason: 'x'.repeat(1001) } })).status).toBe(400);
    expect((await api(h, path, { method: 'POST', key: KEYS.approver, body: '{not json' })).status).toBe(400);
    // A form or text body is refused, so an HTML form on another site cannot post here.
    expect((await api(h, path, { method: 'POST', key: KEYS.approver, body: 'reason=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(400);
    expect((await api(h, path, { method: 'POST', key: KEYS.approver, body: '{"reason":"x"}', headers: { 'content-type': 'text/plain' } })).status).toBe(400);
    expect((await h.gateway.approvals.get(approval.id))?.state).toBe('pending');
    await h.gateway.approvals.deny(approval.id, 'test');
    await held;
  });

  it('still runs the Host/Origin guard on these routes', async () => {
    const h = await harness();
    expect((await api(h, '/api/approvals', { key: KEYS.approver, headers: { origin: 'https://evil.example' } })).status).toBe(403);
    expect((await api(h, '/approvals', { headers: { origin: 'https://evil.example' } })).status).toBe(403);
    // Origin: null passes the guard only on the pages' form posts (where the CSRF token is checked), never on the API.
    const nullOrigin = await api(h, '/api/approvals', { key: KEYS.approver, headers: { origin: 'null' } });
    expect(nullOrigin.status).toBe(403);
    expect(nullOrigin.body.error.data.code).toBe('GH_ERR_FORBIDDEN_ORIGIN');
  });

  it('serves the local user, without keys, when no API keys are configured and it listens on loopback', async () => {
    const h = await harness({ auth: undefined });
    const held = heldWrite(await caller(h, undefined));
    const approval = await pendingApproval(h);
    expect((await api(h, '/api/approvals')).body.approvals).toHaveLength(1);
    const approved = await api(h, `/api/approvals/${approval.id}/approve`, { method: 'POST' });
    expect(approved.status).toBe(200);
    expect(approved.body.approval.history.at(-1).actor).toBe('tester'); // the harness's anonymous caller
    expect(resultText(await held)).toBe('wrote k');

    const pages = new PageClient(h);
    const list = await pages.get('/approvals');
    expect(list.status).toBe(200);
    expect(list.html).toContain('tester');
    expect((await pages.get('/approvals/login')).status).toBe(303);
  });
});

describe('the approval pages', () => {
  it('send a stranger to the login, sign an approver in, and escape attacker-controlled text', async () => {
    const h = await harness();
    const held = heldWrite(await caller(h), { key: 'k', value: XSS });
    const approval = await pendingApproval(h);
    const browser = new PageClient(h);

    const stranger = await browser.get(`/approvals/${approval.id}`);
    expect(stranger.status).toBe(303);
    expect(stranger.location).toBe(`login?next=${approval.id}`);
    expect((await browser.get('/approvals')).location).toBe('approvals/login');

    expect((await browser.login('not-a-key-of-this-server-000')).status).toBe(401);
    expect((await browser.login(KEYS.caller)).status).toBe(403);
    // The login form's own CSRF token: forged, or posted without the nonce cookie it is bound to.
    await browser.get('/approvals/login');
    const forgedLogin = await browser.post('/approvals/login', { csrf: 'forged', next: '', key: KEYS.approver });
    expect({ status: forgedLogin.status, code: codeOn(forgedLogin) }).toEqual({ status: 403, code: 'GH_ERR_CSRF' });
    const noNonce = await new PageClient(h).post('/approvals/login', { csrf: csrfOf((await browser.get('/approvals/login')).html), next: '', key: KEYS.approver });
    expect({ status: noNonce.status, code: codeOn(noNonce) }).toEqual({ status: 403, code: 'GH_ERR_CSRF' });
    expect(browser.cookie('gatehouse_approver')).toBeUndefined();
    const login = await browser.login(KEYS.approver);
    expect(login.status).toBe(303);
    expect(login.location).toBe('../approvals');
    const setCookie = login.headers.getSetCookie().find((c) => c.startsWith('gatehouse_approver='))!;
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).toMatch(/Path=\//);

    const list = await browser.get('/approvals');
    expect(list.status).toBe(200);
    expect(list.html).toContain(`href="approvals/${approval.id}"`);
    const page = await browser.get(`/approvals/${approval.id}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.html).toContain('name="viewport"');
    expect(page.html).not.toContain('<script');
    expect(page.html).not.toContain('<img');
    expect(page.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;');
    expect(page.html).toContain('fx__write');
    expect(page.html).toContain('destructive-tools-need-approval');
    expect(page.html).toMatch(/in 1[45] min/);
    expect(Buffer.byteLength(page.html)).toBeLessThan(8 * 1024);

    const decided = await browser.post(`/approvals/${approval.id}`, { csrf: csrfOf(page.html), decision: 'approve', reason: XSS });
    expect(decided.status).toBe(303);
    expect(resultText(await held)).toBe('wrote k');
    const after = await browser.get(`/approvals/${approval.id}`);
    expect(after.html).toMatch(/id="state">(approved|consumed)</);
    expect(after.html).toContain('by alice');
    expect(after.html).not.toContain('<script');
    expect(after.html).not.toContain('name="decision"');
    expect(h.writes()).toBe(1);
  });

  it('refuse a decision without a valid CSRF token or from another origin, and change nothing', async () => {
    const h = await harness();
    const client = await caller(h);
    const held = heldWrite(client);
    const approval = await pendingApproval(h);
    const other = heldWrite(client, { key: 'other', value: 'v' });
    await expect.poll(async () => (await h.gateway.approvals.list('pending')).length).toBe(2);
    const otherId = (await h.gateway.approvals.list('pending')).find((a) => a.id !== approval.id)!.id;

    const browser = new PageClient(h);
    await browser.login(KEYS.approver);
    const token = csrfOf((await browser.get(`/approvals/${approval.id}`)).html);
    const otherToken = csrfOf((await browser.get(`/approvals/${otherId}`)).html);
    const path = `/approvals/${approval.id}`;

    const refusal = (answer: PageAnswer) => ({ status: answer.status, code: codeOn(answer) });
    const csrfRefused = { status: 403, code: 'GH_ERR_CSRF' };
    expect(refusal(await browser.post(path, { decision: 'approve' }))).toEqual(csrfRefused);
    expect(refusal(await browser.post(path, { decision: 'approve', csrf: 'forged' }))).toEqual(csrfRefused);
    expect(refusal(await browser.post(path, { decision: 'approve', csrf: otherToken }))).toEqual(csrfRefused);
    // A foreign Origin is stopped by the HTTP guard before the page's own check; a foreign Referer by the page.
    expect(refusal(await browser.post(path, { decision: 'approve', csrf: token }, { origin: 'https://evil.example' }))).toEqual({ status: 403, code: 'GH_ERR_FORBIDDEN_ORIGIN' });
    expect(refusal(await browser.post(path, { decision: 'approve', csrf: token }, { referer: 'https://evil.example/page' }))).toEqual(csrfRefused);

    // Another session's token: the token is bound to the session it was minted in.
    const second = new PageClient(h);
    await second.login(KEYS.approver);
    expect(refusal(await second.post(path, { decision: 'approve', csrf: token }))).toEqual(csrfRefused);
    // No cookie at all: to the login, nothing decided.
    expect((await new PageClient(h).post(path, { decision: 'approve', csrf: token })).status).toBe(303);

    expect((await h.gateway.approvals.get(approval.id))?.state).toBe('pending');
    expect(h.writes()).toBe(0);

    // The same origin, or none (a browser sends `Origin: null` under Referrer-Policy: no-referrer).
    const host = new URL(h.url).host;
    expect((await browser.post(path, { decision: 'deny', csrf: token, reason: 'no' }, { origin: `http://${host}` })).status).toBe(303);
    expect((await h.gateway.approvals.get(approval.id))?.state).toBe('denied');
    expect((await browser.post(`/approvals/${otherId}`, { decision: 'deny', csrf: otherToken })).status).toBe(303);
    await Promise.all([held, other]);
    expect(h.writes()).toBe(0);
  });

  it('show the refusal on the page when the service refuses, with its status', async () => {
    const h = await harness({ policies: [policy('approval: { approvers: [bob] }')] });
    const held = heldWrite(await caller(h));
    const approval = await pendingApproval(h);
    const browser = new PageClient(h);
    await browser.login(KEYS.approver);
    const page = await browser.get(`/approvals/${approval.id}`);
    expect(page.html).toContain('<dt>Approvers</dt><dd>bob</dd>');
    const refused = await browser.post(`/approvals/${approval.id}`, { decision: 'approve', csrf: csrfOf(page.html) });
    expect(refused.status).toBe(403);
    expect(refused.html).toContain('GH_ERR_APPROVER_NOT_ALLOWED');
    expect((await h.gateway.approvals.get(approval.id))?.state).toBe('pending');
    expect((await new PageClient(h).get(`/approvals/apr_NOPE`)).status).toBe(303);
    expect((await browser.get(`/approvals/apr_NOPE`)).status).toBe(404);
    await h.gateway.approvals.deny(approval.id, 'bob');
    await held;
  });

  it("keep another tenant's approvals out of sight", async () => {
    const h = await harness();
    const held = heldWrite(await caller(h));
    const approval = await pendingApproval(h);
    const browser = new PageClient(h);
    await browser.login(KEYS.otherTenant);
    expect((await browser.get('/approvals')).html).not.toContain(approval.id);
    expect((await browser.get(`/approvals/${approval.id}`)).status).toBe(403);
    await h.gateway.approvals.deny(approval.id, 'test');
    await held;
  });

  it('reject a tampered or forged session cookie, and sign out', async () => {
    const h = await harness();
    const browser = new PageClient(h);
    await browser.login(KEYS.approver);
    const cookie = browser.cookie('gatehouse_approver')!;
    const [payload, mac] = cookie.split('.');
    const forged = Buffer.from(JSON.stringify(['mallory', 'default', Date.now() + 3_600_000])).toString('base64url');
    for (const value of [`${forged}.${mac}`, `${payload}.${mac.slice(0, -2)}AA`, 'garbage', `${payload}`]) {
      const tampered = new PageClient(h);
      tampered.setCookie('gatehouse_approver', value);
      expect((await tampered.get('/approvals')).status).toBe(303);
    }
    expect((await browser.get('/approvals')).status).toBe(200);

    const list = await browser.get('/approvals');
    expect((await browser.post('/approvals/logout', { csrf: 'forged' })).status).toBe(303);
    expect(browser.cookie('gatehouse_approver')).toBeDefined(); // a forged logout does nothing
    expect((await browser.post('/approvals/logout', { csrf: csrfOf(list.html, 'logout') })).location).toBe('login');
    expect(browser.cookie('gatehouse_approver')).toBeUndefined();
    expect((await browser.get('/approvals')).status).toBe(303);
  });

  it('keep sessions valid across a restart: the session key is created once in the data dir, 0600', async () => {
    const first = await startHarness({ auth: approverAuth });
    const browser = new PageClient(first);
    await browser.login(KEYS.approver);
    const cookie = browser.cookie('gatehouse_approver')!;
    await first.close();
    expect(statSync(join(first.dataDir, 'secrets/approver-session.key')).mode & 0o777).toBe(0o600);

    const second = await harness({ dataDir: first.dataDir });
    const again = new PageClient(second);
    again.setCookie('gatehouse_approver', cookie);
    expect((await again.get('/approvals')).status).toBe(200);
  });

  it('reload once for a visitor who arrives from another site, so the SameSite=Strict cookie comes along', async () => {
    const h = await harness();
    const arriving = await new PageClient(h).get('/approvals/apr_SOME', { 'sec-fetch-site': 'cross-site' });
    expect(arriving.status).toBe(200);
    expect(arriving.html).toContain('<meta http-equiv="refresh" content="0">');
    expect((await new PageClient(h).get('/approvals/apr_SOME', { 'sec-fetch-site': 'same-origin' })).status).toBe(303);
  });
});
