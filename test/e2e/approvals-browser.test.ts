import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, launchChromium, requireChromium } from '../helpers/chromium.ts';
import type { Browser } from 'playwright-core';
import type { Client } from '@modelcontextprotocol/client';
import { startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { approverAuth, baseOf, connectWithKey, heldWrite, KEYS, pendingApproval, resultText } from '../helpers/approvers.ts';

requireChromium('the approval page in a browser');

describe.runIf(chromiumAvailable)('the approval page in a browser', () => {
  let browser: Browser;
  let h: Harness;
  let client: Client;

  beforeAll(async () => {
    browser = await launchChromium();
    h = await startHarness({ auth: approverAuth });
    client = await connectWithKey(h.url, KEYS.caller);
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await h?.close();
    await browser?.close();
  });

  it('signs in, opens the approval, approves it, and the held call completes once', async () => {
    const attack = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">';
    const held = heldWrite(client, { key: 'k', value: attack });
    const approval = await pendingApproval(h);
    const context = await browser.newContext();
    const page = await context.newPage();

    await page.goto(`${baseOf(h)}/approvals/${approval.id}`);
    expect(new URL(page.url()).pathname).toBe('/approvals/login');
    await page.fill('#key', KEYS.approver);
    await page.click('main form button');
    await page.waitForURL(`**/approvals/${approval.id}`);

    const [cookie] = (await context.cookies()).filter((c) => c.name === 'gatehouse_approver');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(await page.textContent('#state')).toBe('pending');
    expect(await page.textContent('dl.args')).toContain(attack); // shown as text, never run
    expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.locator('img').count()).toBe(0);

    await page.fill('#reason', 'checked in the browser');
    await page.click('button.approve');
    await page.waitForURL(`**/approvals/${approval.id}`);
    expect(await page.textContent('#state')).toMatch(/^(approved|consumed)$/);
    expect(await page.textContent('ol')).toContain('checked in the browser');

    expect(resultText(await held)).toBe('wrote k');
    expect(h.writes()).toBe(1);
    await page.reload();
    expect(await page.textContent('#state')).toBe('consumed');
    expect(await page.locator('button.approve').count()).toBe(0);
    await context.close();
  }, 60_000);

  it('follows a link from another site to the approval while signed in (the SameSite=Strict cookie comes along after one reload)', async () => {
    const held = heldWrite(client, { key: 'k2', value: 'v' });
    const approval = await pendingApproval(h);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${baseOf(h)}/approvals/login`);
    await page.fill('#key', KEYS.approver);
    await page.click('main form button');
    await page.waitForURL('**/approvals');
    expect(await page.textContent('main')).toContain(approval.id);

    // A page of another site (here: about:blank, an opaque origin) links to the approval, as a chat message would.
    const elsewhere = await context.newPage();
    await elsewhere.setContent(`<a id="go" href="${baseOf(h)}/approvals/${approval.id}">approve</a>`);
    await elsewhere.click('#go');
    await elsewhere.waitForSelector('#state');
    expect(new URL(elsewhere.url()).pathname).toBe(`/approvals/${approval.id}`);

    await elsewhere.click('button.deny');
    await elsewhere.waitForURL(`**/approvals/${approval.id}`);
    expect(await elsewhere.textContent('#state')).toBe('denied');
    expect((await held).isError).toBe(true);
    await context.close();
  }, 60_000);

  it('folds a long argument until the approver opens it, with no script, and downloads the arguments', async () => {
    const long = `${'a long file content line\n'.repeat(300)}THE-LAST-LINE`;
    const held = heldWrite(client, { key: 'notes/long.txt', value: long });
    const approval = await pendingApproval(h);
    const context = await browser.newContext({ acceptDownloads: true });
    const page = await context.newPage();
    await page.goto(`${baseOf(h)}/approvals/login`);
    await page.fill('#key', KEYS.approver);
    await page.click('main form button');
    await page.waitForURL('**/approvals');
    expect(await page.textContent('main')).toContain('key: "notes/long.txt", value: "a long file content line\\na long file con"…');

    await page.goto(`${baseOf(h)}/approvals/${approval.id}`);
    // In the arguments list: the page's grant and edit forms (folded) carry the value too.
    const tail = page.locator('dl.args').getByText('THE-LAST-LINE');
    expect(await tail.isVisible()).toBe(false);
    await page.click('details summary');
    expect(await tail.isVisible()).toBe(true);
    expect(await page.textContent('details pre')).toBe(long);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a[download]')]);
    expect(download.suggestedFilename()).toBe(`${approval.id}-arguments.json`);
    const { readFile } = await import('node:fs/promises');
    expect(JSON.parse(await readFile((await download.path())!, 'utf8'))).toEqual({ key: 'notes/long.txt', value: long });

    await page.click('button.deny');
    await page.waitForURL(`**/approvals/${approval.id}`);
    expect((await held).isError).toBe(true);
    await context.close();
  }, 60_000);
});
