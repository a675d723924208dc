// The console's Policy, Upstreams and Overview pages over plain HTTP: rule hits from the audit trail, the explain
// form, the admin-only draft replay (roles, CSRF, a draft that does not parse, the size limit), the upstreams with
// their tools' digests and listing, and the overview's JSON feed after a known mix of calls.
import { describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, waitFor } from '../helpers/gateway-harness.ts';
import { api, connectWithKey, heldWrite, KEYS, pendingApproval } from '../helpers/approvers.ts';
import { codeOn, PageClient, type PageAnswer } from '../helpers/page-client.ts';
import { consoleAuth, consoleHarnesses, consoleLogin, VIEWER_KEY } from '../helpers/console.ts';
import { DENY_ECHO_DRAFT, formToken, knownMix, pagesPolicies } from '../helpers/console-pages.ts';

const { clients, harness } = consoleHarnesses(() => ({ policies: pagesPolicies() }));

const rowOf = (page: PageAnswer, rule: string): string => new RegExp(`<tr data-rule="${rule}">.*?</tr>`, 's').exec(page.html)?.[0] ?? '';
const hitsOf = (page: PageAnswer, rule: string): number => Number(/<td class="hits">(\d+)<\/td>/.exec(rowOf(page, rule))?.[1]);

describe('the Policy page', () => {
  it("shows the bundle, counts each rule's hits from the audit trail, and lists the rules that never fired", async () => {
    const h = await harness();
    const client = await connectHttp(h.url);
    clients.push(client);
    await knownMix(client, h); // 3 echo (read-only-tools), 1 crash (no-crash)
    const browser = new PageClient(h);
    const page = await browser.get('/policy?window=1h');
    expect(page.status).toBe(200);
    expect(page.html).toContain(h.gateway.kernel.snapshot);
    expect(hitsOf(page, 'read-only-tools')).toBe(3);
    expect(hitsOf(page, 'destructive-tools-need-approval')).toBe(0);
    expect(hitsOf(page, 'no-crash')).toBe(1);
    expect(page.html).toMatch(/4 decisions in the last 1h\./);
    const never = /<ul id="never">(.*?)<\/ul>/s.exec(page.html)?.[1] ?? '';
    expect(never).toContain('resources-and-prompts-read');
    expect(never).not.toContain('read-only-tools');
    expect(page.html).toMatch(/<option value="1h" selected>/);
  });

  it('explains a typed call through the live verdict, and says what is wrong with one it cannot read', async () => {
    const h = await harness();
    const browser = new PageClient(h);
    const page = await browser.get('/policy');
    const csrf = formToken(page.html, 'policy/explain');
    const explained = await browser.post('/policy/explain', { csrf, server: 'fx', tool: 'echo', principal: 'tester', args: '{"text":"hi"}' });
    expect(explained.status).toBe(200);
    expect(explained.html).toMatch(/<span class="state allow" id="verdict">allow<\/span>/);
    expect(explained.html).toContain('read-only-tools');
    expect(explained.html).toContain('value="echo"'); // the form keeps what was typed

    const notJson = await browser.post('/policy/explain', { csrf, server: 'fx', tool: 'echo', args: '{text' });
    expect({ status: notJson.status, code: codeOn(notJson) }).toEqual({ status: 400, code: 'GH_ERR_INVALID_REQUEST' });
    const forged = await browser.post('/policy/explain', { csrf: 'forged', server: 'fx', tool: 'echo', args: '{}' });
    expect({ status: forged.status, code: codeOn(forged) }).toEqual({ status: 403, code: 'GH_ERR_CSRF' });
  });

  it('replays a draft over the recorded decisions for an admin (the local user) and lists what would change', async () => {
    const h = await harness();
    const client = await connectHttp(h.url);
    clients.push(client);
    await knownMix(client, h);
    const browser = new PageClient(h);
    const csrf = formToken((await browser.get('/policy')).html, 'policy/replay');
    const replay = await browser.post('/policy/replay', { csrf, draft: DENY_ECHO_DRAFT, window: '1h' });
    expect(replay.status).toBe(200);
    expect(/<dd id="changed"><strong>(\d+)<\/strong>/.exec(replay.html)?.[1]).toBe('3');
    const changes = /<table id="changes">(.*?)<\/table>/s.exec(replay.html)?.[1] ?? '';
    expect(changes).toMatch(/<span class="state allow">allow<\/span>.*<span class="state deny">deny<\/span>.*<td>3<\/td>.*no-echo/s);
    expect(changes).toContain('fx__echo');
    expect(h.gateway.kernel.snapshot).not.toBe(/Under draft <span class="mono">([^<]+)/.exec(replay.html)?.[1]); // nothing loaded

    const broken = await browser.post('/policy/replay', { csrf, draft: 'version: 2\nrules:\n  - id: x\n    effect: maybe\n', window: '1h' });
    expect({ status: broken.status, code: codeOn(broken) }).toEqual({ status: 400, code: 'GH_ERR_POLICY_INVALID' });
    expect(broken.html).toMatch(/<p class="error" role="alert" id="replay-error">[^<]*draft\.yaml/);
    const yaml = await browser.post('/policy/replay', { csrf, draft: 'version: [', window: '1h' });
    expect(codeOn(yaml)).toBe('GH_ERR_POLICY_INVALID');
    const big = await browser.post('/policy/replay', { csrf, draft: `# ${'x'.repeat(300 * 1024)}\nversion: 2\n`, window: '1h' });
    expect({ status: big.status, code: codeOn(big) }).toEqual({ status: 413, code: 'GH_ERR_BODY_TOO_LARGE' });
    const forged = await browser.post('/policy/replay', { csrf: formToken((await browser.get('/policy')).html, 'policy/explain'), draft: DENY_ECHO_DRAFT });
    expect({ status: forged.status, code: codeOn(forged) }).toEqual({ status: 403, code: 'GH_ERR_CSRF' }); // another form's token
  });

  it('keeps the replay from a viewer and an approver: no form, and a post is refused', async () => {
    const h = await harness(consoleAuth);
    for (const key of [VIEWER_KEY, KEYS.approver]) {
      const browser = new PageClient(h);
      await consoleLogin(browser, key);
      const page = await browser.get('/policy');
      expect(page.status).toBe(200);
      expect(page.html).not.toContain('policy/replay"');
      expect(page.html).toMatch(/Replaying a draft bundle takes the admin role/);
      const posted = await browser.post('/policy/replay', { csrf: formToken(page.html, 'policy/explain'), draft: DENY_ECHO_DRAFT });
      expect({ status: posted.status, code: codeOn(posted) }).toEqual({ status: 403, code: 'GH_ERR_FORBIDDEN' });
      // Explaining is for every console role.
      const explained = await browser.post('/policy/explain', { csrf: formToken(page.html, 'policy/explain'), server: 'fx', tool: 'write', args: '{"key":"k","value":"v"}' });
      expect(explained.html).toMatch(/id="verdict">require_approval</);
    }
    expect((await new PageClient(h).post('/policy/replay', { csrf: 'x', draft: DENY_ECHO_DRAFT })).location).toBe('../login?next=policy%2Freplay');
  });
});

describe('the Upstreams page', () => {
  it("shows each upstream's health and its tools with their pinned digests, annotations and whom the policy lists them for", async () => {
    const h = await harness(consoleAuth);
    const browser = new PageClient(h);
    await consoleLogin(browser, VIEWER_KEY);
    const page = await browser.get('/upstreams');
    expect(page.status).toBe(200);
    expect(page.html).toMatch(/<section class="card upstream" data-upstream="fx"[^>]*>\s*<h2[^>]*>fx <span class="state allow health">up<\/span>/);
    expect(page.html).toMatch(/<dd class="restarts">0<\/dd>/);
    for (const entry of h.gateway.catalog.entries()) expect(page.html).toContain(`<td class="mono digest">${entry.digest}</td>`);
    const row = (tool: string) => new RegExp(`<tr data-tool="${tool}">.*?</tr>`, 's').exec(page.html)?.[0] ?? '';
    expect(row('fx__echo')).toMatch(/readOnlyHint: true/);
    expect(row('fx__echo')).toMatch(/class="state allow">everyone/);
    expect(row('fx__crash')).toMatch(/class="state deny">nobody/); // denied to everyone
    expect(page.html).not.toContain('id="dlq"'); // the DLQ is for admins
  });
});

describe('the Upstreams page after a crash', () => {
  const plain = consoleHarnesses(); // the default policy lets fx__crash run
  it('counts the upstream coming back', async () => {
    const h = await plain.harness();
    const client = await connectHttp(h.url);
    plain.clients.push(client);
    await client.callTool({ name: 'fx__crash', arguments: {} }).catch(() => undefined);
    await waitFor(() => h.gateway.restarts.get('fx') === 1 && h.gateway.directory.get('fx')?.state === 'ready', 'fx to come back');
    const page = await new PageClient(h).get('/upstreams');
    expect(page.html).toMatch(/<dd class="restarts">1<\/dd>/);
    expect(page.html).toMatch(/fx <span class="state allow health">up<\/span>/);
  });
});

describe('the Overview', () => {
  it('feeds its charts JSON of the last hour by decision, the time split, approvals pending and the chain status', async () => {
    const h = await harness(consoleAuth);
    const client = await connectWithKey(h.url, KEYS.caller);
    clients.push(client);
    await knownMix(client, h);
    const page = await new PageClient(h).get('/');
    expect(page.location).toBe('./login');
    const browser = new PageClient(h);
    await consoleLogin(browser, VIEWER_KEY);
    const home = await browser.get('/');
    expect(home.html).toMatch(/<script defer src="\.\/assets\/overview\.js"><\/script>/);

    // The page's own script reads it with the session cookie; a script with a key, by bearer.
    const viaCookie = await fetch(`${h.url.replace(/\/mcp$/, '')}/api/overview`, { headers: { cookie: browser.cookieHeader } });
    expect(viaCookie.status).toBe(200);
    const { body } = await api(h, '/api/overview', { key: VIEWER_KEY });
    const total = (d: string) => (body.calls.byDecision[d] as number[]).reduce((a, b) => a + b, 0);
    expect(total('allow')).toBe(3);
    expect(total('deny')).toBe(1);
    expect(body.calls.minutes).toHaveLength(60);
    expect(body.calls.duration.upstreamP50.some((v: number | null) => v !== null)).toBe(true);
    expect(body.calls.duration.gatehouseP95.some((v: number | null) => v !== null)).toBe(true);
    expect(body.approvals).toEqual({ pending: 0, waitsMs: [] });
    await h.gateway.httpServices().approver.console?.chain?.settled('default');
    const again = await api(h, '/api/overview', { key: VIEWER_KEY });
    expect(again.body.chain).toMatchObject({ ok: true });
    expect(again.body.chain.head.seq).toBeGreaterThan(0);

    // A call held for a human shows as pending, with its wait.
    void heldWrite(client).catch(() => undefined);
    await pendingApproval(h);
    const waiting = await api(h, '/api/overview', { key: VIEWER_KEY });
    expect(waiting.body.approvals.pending).toBe(1);
    expect(waiting.body.approvals.waitsMs).toHaveLength(1);

    expect((await fetch(`${h.url.replace(/\/mcp$/, '')}/api/overview`)).status).toBe(401);
    expect((await api(h, '/api/overview', { key: KEYS.caller })).status).toBe(403);
  });
});
