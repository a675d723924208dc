import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ApproverAccess } from '../../src/api/access.ts';
import { CsrfTokens, fromThisServer } from '../../src/api/csrf.ts';
import { escapeHtml, html } from '../../src/api/html.ts';
import { dataDirSecret, deriveKey, isSignatureOf, signatureOf } from '../../src/approvals/signing.ts';
import { SessionCookies } from '../../src/api/session-cookie.ts';
import { relative } from '../../src/api/views.ts';
import { noticeOf } from '../../src/approvals/notifications.ts';
import type { ApprovalRecord } from '../../src/protocol/approval-record.ts';

const key = deriveKey('x'.repeat(32), 'test');

describe('approver pages, the parts', () => {
  it('escapes every interpolation unless it is markup made by html``', () => {
    const evil = `"><script>alert('x')</script>&`;
    expect(escapeHtml(evil)).toBe('&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;');
    expect(html`<p title="${evil}">${evil}</p>`.value).toBe(`<p title="${escapeHtml(evil)}">${escapeHtml(evil)}</p>`);
    expect(html`<ul>${['<a>', html`<li>ok</li>`]}</ul>`.value).toBe('<ul>&lt;a&gt;<li>ok</li></ul>');
    expect(html`${undefined}${null}${false}${0}`.value).toBe('0');
  });

  it('signs sessions: a changed, foreign or expired cookie is no session', () => {
    let now = 1_000_000;
    const sessions = new SessionCookies(key, { ttlMs: 60_000, secure: true, now: () => now });
    const header = sessions.issue('alice', 'default');
    expect(header).toMatch(/; Path=\/; HttpOnly; SameSite=Strict; Max-Age=60; Secure$/);
    const cookie = header.split(';')[0];
    expect(sessions.read(`other=1; ${cookie}`)).toMatchObject({ principal: 'alice', tenant: 'default', expiresAt: 1_060_000 });
    expect(new SessionCookies(deriveKey('y'.repeat(32), 'test'), { ttlMs: 60_000, secure: false, now: () => now }).read(cookie)).toBeUndefined();
    expect(sessions.read(cookie.replace('gatehouse_approver=', 'gatehouse_approver=A'))).toBeUndefined();
    now += 60_000;
    expect(sessions.read(cookie)).toBeUndefined();
    expect(sessions.clear()).toContain('Max-Age=0');
  });

  it('binds CSRF tokens to the session and the purpose', () => {
    const csrf = new CsrfTokens(key);
    const token = csrf.mint('session-1', 'decide:apr_1');
    expect(csrf.verify(token, 'session-1', 'decide:apr_1')).toBe(true);
    expect(csrf.verify(token, 'session-2', 'decide:apr_1')).toBe(false);
    expect(csrf.verify(token, 'session-1', 'decide:apr_2')).toBe(false);
    expect(csrf.verify(undefined, 'session-1', 'decide:apr_1')).toBe(false);
    expect(csrf.verify(['x'], 'session-1', 'decide:apr_1')).toBe(false);
  });

  it("accepts a form post's Origin or Referer only from this server, and decides nothing on `null` or none", () => {
    const host = '127.0.0.1:8787';
    expect(fromThisServer({ host, origin: 'http://127.0.0.1:8787' }, undefined)).toBe(true);
    expect(fromThisServer({ host, origin: 'https://gh.example.com' }, 'https://gh.example.com')).toBe(true);
    expect(fromThisServer({ host, origin: 'https://evil.example' }, 'https://gh.example.com')).toBe(false);
    expect(fromThisServer({ host, referer: 'https://evil.example/x' }, undefined)).toBe(false);
    expect(fromThisServer({ host, referer: 'http://127.0.0.1:8787/approvals/apr_1' }, undefined)).toBe(true);
    expect(fromThisServer({ host, origin: 'null' }, undefined)).toBe(true);
    expect(fromThisServer({ host }, undefined)).toBe(true);
  });

  it('admits approvers: approver keys only; the local user on loopback without keys; nobody beyond loopback without keys', () => {
    const sessions = new SessionCookies(key, { ttlMs: 60_000, secure: false, now: () => 0 });
    const anonymous = { principal: 'me', tenant: 'default' };
    const apiKeys = [
      { key: 'a'.repeat(20), principal: 'alice', tenant: 't1', roles: ['approver'] },
      { key: 'b'.repeat(20), principal: 'bob', tenant: 't1', roles: [] },
    ];
    const keyed = new ApproverAccess({ host: '0.0.0.0', apiKeys, anonymous }, sessions);
    expect(keyed.bearer(`Bearer ${'a'.repeat(20)}`, undefined).approver).toMatchObject({ principal: 'alice', tenant: 't1' });
    expect(keyed.bearer(`Bearer ${'b'.repeat(20)}`, undefined).refused).toMatchObject({ status: 403, code: 'GH_ERR_FORBIDDEN' });
    expect(keyed.bearer(undefined, undefined).refused).toMatchObject({ status: 401, code: 'GH_ERR_UNAUTHORIZED' });
    expect(keyed.cookie(undefined).refused?.status).toBe(401);
    expect(keyed.cookie(sessions.issue('alice', 't1').split(';')[0]).approver?.principal).toBe('alice');
    // A session of someone who is no approver (any more) is no session.
    expect(keyed.cookie(sessions.issue('bob', 't1').split(';')[0]).refused?.status).toBe(401);

    const local = new ApproverAccess({ host: '127.0.0.1', apiKeys: [], anonymous }, sessions);
    expect(local.mode).toBe('local');
    expect(local.bearer(undefined, undefined).approver).toMatchObject(anonymous);
    expect(local.cookie(undefined).approver).toMatchObject(anonymous);

    const open = new ApproverAccess({ host: '0.0.0.0', apiKeys: [], anonymous }, sessions);
    expect(open.mode).toBe('closed');
    expect(open.bearer(undefined, undefined).refused).toMatchObject({ status: 403, code: 'GH_ERR_FORBIDDEN' });
    expect(open.cookie(undefined).refused?.status).toBe(403);
  });

  it('creates the data dir secret once, 0600, even when two start at the same time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-secret-'));
    const [a, b] = await Promise.all([dataDirSecret(dir, 'approver-session'), dataDirSecret(dir, 'approver-session')]);
    expect(a).toBe(b);
    expect(a).toHaveLength(64);
    expect(readFileSync(join(dir, 'secrets/approver-session.key'), 'utf8').trim()).toBe(a);
    expect(statSync(join(dir, 'secrets/approver-session.key')).mode & 0o777).toBe(0o600);
    expect(await dataDirSecret(dir, 'approver-session')).toBe(a);
  });

  it('says when, relative to now', () => {
    expect(relative(14 * 60_000 + 1000, 0)).toBe('in 14 min');
    expect(relative(0, 3000)).toBe('3 s ago');
    expect(relative(0, 2 * 3_600_000)).toBe('2 h ago');
  });

  it("writes the webhook's text on one line, with Slack's control characters escaped", () => {
    const record = { id: 'apr_1', state: 'pending', tenant: 't', principal: 'agent', server: 'fx', tool: 'fx__<b>', reason: 'a & b\nc', expiresAt: 0, createdAt: 0, history: [] } as unknown as ApprovalRecord;
    const notice = noticeOf(record, 'approval.created', { state: 'pending', at: 0, actor: 'agent' }, 'https://gh/approvals/apr_1');
    expect(notice.text).toBe('Approval needed: agent wants to run fx__&lt;b&gt; on fx (tenant t): a &amp; b c. https://gh/approvals/apr_1');
    expect(noticeOf(record, 'approval.denied', { state: 'denied', at: 1, actor: 'bob', reason: 'no' }, undefined).text).toBe('Denied by bob: fx__&lt;b&gt; for agent (tenant t) (no). apr_1');
  });

  it('checks every signature (request state, session cookie, CSRF token) with one constant-time helper', () => {
    const mac = signatureOf(key, 'text');
    expect(isSignatureOf(key, 'text', mac)).toBe(true);
    expect(isSignatureOf(key, 'other', mac)).toBe(false);
    expect(isSignatureOf(deriveKey('y'.repeat(32), 'test'), 'text', mac)).toBe(false);
    expect(isSignatureOf(key, 'text', mac.slice(0, -2))).toBe(false);
    expect(isSignatureOf(key, 'text', `${mac}AA`)).toBe(false);
    for (const junk of [undefined, 42, '', 'x'.repeat(101)]) expect(isSignatureOf(key, 'text', junk)).toBe(false);
  });
});
