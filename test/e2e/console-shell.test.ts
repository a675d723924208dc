// The console's frame over plain HTTP: who may open which page (local user, viewer, approver, a key without a
// console role), the console's own login and logout with their CSRF tokens, the assets, and the CSP.
import { get, type IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ulid } from '../../src/protocol/ulid.ts';
import type { Client } from '@modelcontextprotocol/client';
import { baseOf, connectWithKey, heldWrite, KEYS, pendingApproval, resultText } from '../helpers/approvers.ts';
import { codeOn, csrfOf, PageClient } from '../helpers/page-client.ts';
import { consoleAuth, consoleHarnesses, consoleLogin, VIEWER_KEY } from '../helpers/console.ts';

const { clients, harness } = consoleHarnesses();

const PAGES = ['/', '/activity', '/sessions', '/approvals', '/policy', '/upstreams'];
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

describe('the console shell', () => {
  it('serves every page to the local user on loopback without keys, in one navigation, under a strict CSP, with no inline script', async () => {
    const h = await harness();
    const browser = new PageClient(h);
    for (const path of PAGES) {
      const page = await browser.get(path);
      expect(page.status, path).toBe(200);
      expect(page.headers.get('content-security-policy')).toBe(CSP);
      for (const link of ['href="./activity"', 'href="./sessions"', 'href="./approvals"', 'href="./policy"', 'href="./upstreams"']) expect(page.html).toContain(link);
      expect(page.html).toMatch(/aria-current="page"/);
      expect(page.html).not.toMatch(/<script(?![^>]*\ssrc=)/); // every script is a file
      expect(page.html).not.toMatch(/\son[a-z]+=/i);
    }
    expect((await browser.get('/activity')).html).toMatch(/<a href="\.\/activity" aria-current="page">Activity<\/a>/);
    expect((await browser.get('/login')).location).toBe('./'); // nothing to sign in to
  });

  it('serves its assets by name only, nothing else from the disk', async () => {
    const h = await harness(consoleAuth);
    const browser = new PageClient(h);
    const css = await browser.get('/assets/console.css');
    expect(css.status).toBe(200); // before any login: the login page needs it
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect(css.headers.get('x-content-type-options')).toBe('nosniff');
    for (const path of ['/assets/..%2Fregister.ts', '/assets/register.ts', '/assets/nope.js', '/assets/%2e%2e%2f%2e%2e%2fpackage.json']) expect((await browser.get(path)).status, path).toBe(404);
  });

  it('sends a stranger to the login with the page to return to, and lets a viewer key in, not a key without a console role', async () => {
    const h = await harness(consoleAuth);
    const browser = new PageClient(h);
    expect((await browser.get('/activity')).location).toBe('./login?next=activity');
    expect((await browser.get('/')).location).toBe('./login');
    expect((await browser.get('/sessions?x=1')).location).toBe('./login?next=sessions');

    expect((await consoleLogin(browser, 'not-a-key-of-this-server-000')).status).toBe(401);
    const refused = await consoleLogin(browser, KEYS.caller);
    expect({ status: refused.status, code: codeOn(refused) }).toEqual({ status: 403, code: 'GH_ERR_FORBIDDEN' });
    const forged = await browser.post('/login', { csrf: 'forged', next: '', key: VIEWER_KEY });
    expect({ status: forged.status, code: codeOn(forged) }).toEqual({ status: 403, code: 'GH_ERR_CSRF' });
    // `next` is a console path, never a URL: anything else goes home.
    expect((await consoleLogin(new PageClient(h), VIEWER_KEY, '//evil.example/x')).location).toBe('./');

    // The feed's event stream: only with a session, never redirected to a page.
    expect((await fetch(`${baseOf(h)}/activity/stream`)).status).toBe(401);

    const login = await consoleLogin(browser, VIEWER_KEY, 'activity');
    expect(login.status).toBe(303);
    expect(login.location).toBe('activity');
    for (const path of PAGES) expect((await browser.get(path)).status, path).toBe(200);
    const home = await browser.get('/');
    expect(home.html).toContain('vera · default · viewer');
    const abort = new AbortController();
    const stream = await fetch(`${baseOf(h)}/activity/stream?tool=fx__*`, { headers: { cookie: browser.cookieHeader }, signal: abort.signal });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.headers.get('content-security-policy')).toBe(CSP);
    abort.abort();
    const badFilter = await browser.get('/activity?outcome=bogus');
    expect({ status: badFilter.status, code: codeOn(badFilter) }).toEqual({ status: 400, code: 'GH_ERR_INVALID_REQUEST' });
    expect((await browser.get('/calls/01NOSUCHJOB0000000000000000')).status).toBe(404);

    // Logout: a forged token does nothing; the header's token ends the session.
    expect((await browser.post('/logout', { csrf: 'forged' })).location).toBe('login');
    expect((await browser.get('/')).status).toBe(200);
    expect((await browser.post('/logout', { csrf: csrfOf(home.html, 'logout') })).location).toBe('login');
    expect((await browser.get('/')).status).toBe(303);
  });

  it('lets a viewer read an approval but not decide it; an approver decides it', async () => {
    const h = await harness(consoleAuth);
    const agent = await connectWithKey(h.url, KEYS.caller);
    clients.push(agent);
    const held = heldWrite(agent);
    const approval = await pendingApproval(h);

    const viewer = new PageClient(h);
    await consoleLogin(viewer, VIEWER_KEY);
    const seen = await viewer.get(`/approvals/${approval.id}`);
    expect(seen.status).toBe(200);
    expect(seen.html).not.toContain('name="decision"');
    expect(seen.html).toContain('Deciding takes the approver role');
    // Even with a valid token for the form (minted for the viewer's session), the decision is refused.
    const posted = await viewer.post(`/approvals/${approval.id}`, { csrf: csrfOf(seen.html, 'logout'), decision: 'approve' });
    expect(posted.status).toBe(403);
    expect((await h.gateway.approvals.get(approval.id))?.state).toBe('pending');

    const approver = new PageClient(h);
    await consoleLogin(approver, KEYS.approver, `approvals`);
    const page = await approver.get(`/approvals/${approval.id}`);
    expect(page.html).toContain('name="decision"');
    expect((await approver.post(`/approvals/${approval.id}`, { csrf: csrfOf(page.html), decision: 'approve' })).status).toBe(303);
    expect(resultText(await held)).toBe('wrote k');
  });

  it('drops a feed whose browser stopped reading once 1 MiB waits unsent, never waiting for it, and goes on', async () => {
    const h = await harness();
    const response = await new Promise<IncomingMessage>((resolve) => get(`${baseOf(h)}/activity/stream`, resolve));
    expect(response.statusCode).toBe(200);
    response.pause(); // a browser that stopped reading: the sockets' buffers fill, then the server's
    // Calls of 16 KiB each (a long principal), far more than the sockets hold and 1 MiB beside.
    const principal = 'p'.repeat(16 * 1024);
    const rounds = 20;
    const perRound = 50;
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < perRound; i++) h.gateway.audit.record({ tenant: 'default', at: Date.now(), type: 'job.submitted', actor: principal, jobId: ulid(), data: { tool: 'fx__echo' } });
      await h.gateway.audit.flush();
      await new Promise((resolve) => setTimeout(resolve, 300)); // past a flush of the stream (every 250 ms)
    }
    let received = 0;
    const ended = new Promise<void>((resolve) => response.on('end', resolve));
    response.on('data', (chunk: Buffer) => void (received += chunk.length));
    response.resume();
    await ended; // the server ended the stream; without the drop it would stay open (and this test time out)
    expect(received).toBeLessThan(rounds * perRound * principal.length);
    // The gateway goes on: a new feed opens, and calls run.
    const again = await fetch(`${baseOf(h)}/activity/stream`, { signal: AbortSignal.timeout(60_000) });
    expect(again.status).toBe(200);
    await again.body?.cancel();
  });
});
