// The console in headless Chromium (playwright-core and Debian's chromium, as the approval page test does): calls
// made by a real SDK client appear in the live feed, a call's page shows its rule trace and audit hashes, the
// filters and the pause work, a held call is approved from the console and completes, and a viewer cannot approve.
// With GATEHOUSE_SCREENSHOTS=1 it saves the README's screenshots under docs/.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, launchChromium, requireChromium, screenshot } from '../helpers/chromium.ts';
import type { Browser, Page } from 'playwright-core';
import type { Client } from '@modelcontextprotocol/client';
import { startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { baseOf, connectWithKey, heldWrite, KEYS, pendingApproval, resultText } from '../helpers/approvers.ts';
import { consoleAuth, VIEWER_KEY } from '../helpers/console.ts';

requireChromium('the console in a browser');

describe.runIf(chromiumAvailable)('the console in a browser', () => {
  let browser: Browser;
  let h: Harness;
  let agent: Client;

  beforeAll(async () => {
    browser = await launchChromium();
    h = await startHarness({ auth: consoleAuth });
    agent = await connectWithKey(h.url, KEYS.caller, 'console-test-agent');
  }, 60_000);

  afterAll(async () => {
    await agent?.close();
    await h?.close();
    await browser?.close();
  });

  /** A page signed in with `key` through the console's login, on `path`. */
  async function signedIn(key: string, path: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) errors.push(message.text());
    });
    (page as Page & { errors?: string[] }).errors = errors;
    await page.goto(`${baseOf(h)}${path}`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.fill('#key', key);
    await page.click('main form button');
    await page.waitForURL(`**${path}`);
    return page;
  }

  const errorsOf = (page: Page) => (page as Page & { errors?: string[] }).errors ?? [];
  const echo = (text: string) => agent.callTool({ name: 'fx__echo', arguments: { text } });
  const rows = (page: Page, text: string) => page.locator('#feed tbody tr', { hasText: text });

  it('shows calls in the live feed as they happen, pauses and resumes, and opens a call with its rule trace and audit hashes', async () => {
    const page = await signedIn(KEYS.approver, '/activity');
    await expect.poll(() => page.textContent('#feed-status')).toMatch(/^live/);

    const attack = '<img src=x onerror=window.__xss=1>';
    await echo('first call');
    await echo(attack);
    await expect.poll(() => rows(page, 'fx__echo').count()).toBe(2);
    const row = rows(page, 'fx__echo').first();
    await expect.poll(() => row.textContent()).toContain('succeeded');
    expect(await row.textContent()).toContain('agent');
    expect(await row.textContent()).toContain('read-only-tools');

    // Paused: calls are counted, not shown; resumed: they are.
    await page.click('#pause');
    expect(await page.getAttribute('#pause', 'aria-pressed')).toBe('true');
    await echo('while paused');
    await expect.poll(() => page.textContent('#feed-status')).toMatch(/^paused, [1-9]\d* waiting/);
    expect(await rows(page, 'fx__echo').count()).toBe(2);
    await page.click('#pause');
    await expect.poll(() => rows(page, 'fx__echo').count()).toBe(3);

    // Many calls at once: the table keeps up (batched per frame) and holds at most its cap of rows.
    await Promise.all(Array.from({ length: 60 }, (_, i) => echo(`burst ${i}`)));
    await expect.poll(() => rows(page, 'fx__echo').count(), { timeout: 20_000 }).toBe(63);
    await screenshot(page, 'activity', { fullPage: false });

    // The call's page: from the feed's link.
    await rows(page, 'fx__echo').last().locator('a', { hasText: 'fx__echo' }).click();
    await page.waitForURL('**/calls/*');
    expect(await page.textContent('#outcome')).toBe('succeeded');
    expect(await page.textContent('#trace-note')).toContain('is the one that decided');
    const trace = await page.textContent('#trace');
    expect(trace).toContain('read-only-tools');
    expect(trace).toMatch(/effect\s+allow/);
    expect(await page.textContent('#chain')).toContain('The chain verifies here');
    const hashes = await page.locator('td.hash').allTextContents();
    expect(hashes.length).toBeGreaterThanOrEqual(4);
    for (const hash of hashes) expect(hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await page.textContent('main')).toMatch(/Result\s*sha256:[0-9a-f]{64}, \d+ bytes/);
    await screenshot(page, 'call');

    // The attacker's text is shown as text on the call's page, never run.
    await page.goBack();
    await rows(page, 'fx__echo').filter({ hasText: 'fx__echo' }).nth(61).locator('a', { hasText: 'fx__echo' }).click();
    await page.waitForURL('**/calls/*');
    expect(await page.textContent('main')).toContain(attack);
    expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
    expect(errorsOf(page)).toEqual([]);
    await page.context().close();
  }, 120_000);

  it('filters the feed on the server, its backlog too, and approves a held call from the console, which then completes', async () => {
    const page = await signedIn(KEYS.approver, '/activity');
    await page.fill('#f-tool', 'fx__write');
    await Promise.all([page.waitForURL('**/activity?*'), page.click('.filters button:not(#pause)')]);
    expect(new URL(page.url()).searchParams.get('tool')).toBe('fx__write');
    await expect.poll(() => page.textContent('#feed-status')).toMatch(/^live/);
    expect(await rows(page, 'fx__echo').count()).toBe(0); // not in the backlog either

    const held = heldWrite(agent, { key: 'from-console', value: 'v' });
    await echo('filtered out');
    await expect.poll(() => rows(page, 'fx__write').count()).toBe(1);
    await expect.poll(() => rows(page, 'fx__write').textContent()).toContain('require_approval');
    const approval = await pendingApproval(h);

    // To the approvals, inside the console's navigation; approve there.
    const desk = await page.context().newPage();
    await desk.goto(`${baseOf(h)}/activity`);
    await desk.click('header nav a:has-text("Approvals")');
    await desk.waitForURL('**/approvals');
    expect(await desk.getAttribute('header nav a[aria-current=page]', 'href')).toBe('./approvals');
    await desk.click(`a[href="approvals/${approval.id}"]`);
    await screenshot(desk, 'approvals');
    await desk.fill('#reason', 'approved from the console');
    await desk.click('button.approve');
    await desk.waitForURL(`**/approvals/${approval.id}`);
    expect(resultText(await held)).toBe('wrote from-console');

    // The feed's row follows the call to its end: approved, by whom, and succeeded.
    await expect.poll(() => rows(page, 'fx__write').textContent(), { timeout: 20_000 }).toContain('succeeded');
    expect(await rows(page, 'fx__write').textContent()).toContain('approved by alice');
    expect(await rows(page, 'fx__echo').count()).toBe(0);

    // The session's timeline: the agent's client, its era, its calls.
    await page.goto(`${baseOf(h)}/sessions`);
    const session = page.locator('#sessions tbody tr', { hasText: 'console-test-agent' });
    expect(await session.textContent()).toContain('legacy');
    expect(await session.textContent()).toContain('agent');
    await screenshot(page, 'sessions');
    await session.locator('a').click();
    await page.waitForURL('**/sessions?session=*');
    const timeline = await page.textContent('#timeline');
    expect(timeline).toContain('fx__write');
    expect(timeline).toContain('approved by alice');
    expect(timeline).toContain('fx__echo');
    await screenshot(page, 'session');
    await page.context().close();
  }, 120_000);

  it('lets a viewer sign in and watch, but not approve', async () => {
    const held = heldWrite(agent, { key: 'viewer-cannot', value: 'v' });
    const approval = await pendingApproval(h);
    const page = await signedIn(VIEWER_KEY, '/activity');
    expect(await page.textContent('header')).toContain('vera · default · viewer');
    await page.goto(`${baseOf(h)}/approvals/${approval.id}`);
    expect(await page.textContent('#state')).toBe('pending');
    expect(await page.locator('button.approve').count()).toBe(0);
    expect(await page.textContent('main')).toContain('Deciding takes the approver role');
    expect((await h.gateway.approvals.get(approval.id))?.state).toBe('pending');
    await h.gateway.approvals.deny(approval.id, 'alice', 'cleaning up');
    expect((await held).isError).toBe(true);
    await page.context().close();
  }, 60_000);
});
