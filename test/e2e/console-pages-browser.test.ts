// The Policy, Upstreams and Overview pages in headless Chromium: explain a typed call, replay an uploaded draft
// that changes decisions and see the change listed, see the upstream's tools with their digests, and see the
// overview's SVG charts drawn from its JSON after a known mix of calls, with nothing refused by the CSP.
// GATEHOUSE_SCREENSHOTS=1 saves docs/console-policy.png, console-upstreams.png and console-overview.png.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { chromiumAvailable, launchChromium, requireChromium, screenshot } from '../helpers/chromium.ts';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { baseOf } from '../helpers/approvers.ts';
import { DENY_ECHO_DRAFT, knownMix, pagesPolicies } from '../helpers/console-pages.ts';

requireChromium('the console pages in a browser');

describe.runIf(chromiumAvailable)('the console pages in a browser', () => {
  let browser: Browser;
  let h: Harness;
  let client: Client;

  beforeAll(async () => {
    browser = await launchChromium();
    h = await startHarness({ policies: pagesPolicies() }); // the local user on loopback: an admin
    client = await connectHttp(h.url);
    await knownMix(client, h);
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await h?.close();
    await browser?.close();
  });

  /** A page that fails the test on any console error (a CSP refusal shows there). */
  async function open(path: string): Promise<{ page: Page; errors: string[] }> {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    const errors: string[] = [];
    page.on('console', (message) => {
      // Chromium asks for /favicon.ico on its own; the console has none.
      if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) errors.push(`${message.text()} ${message.location().url}`);
    });
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${baseOf(h)}${path}`);
    return { page, errors };
  }

  it('explains a typed call, and replays an uploaded draft listing the decisions it would change', async () => {
    const { page, errors } = await open('/policy?window=1h');
    expect(await page.textContent('#snapshot')).toBe(h.gateway.kernel.snapshot);
    expect(await page.textContent('tr[data-rule="read-only-tools"] td.hits')).toBe('3');

    await page.fill('#server', 'fx');
    await page.fill('#tool', 'echo');
    await page.fill('#args', '{"text": "hello"}');
    await page.click('#explain');
    await page.waitForSelector('#verdict');
    expect(await page.textContent('#verdict')).toBe('allow');
    expect(await page.textContent('#explained')).toContain('read-only-tools');

    const file = join(mkdtempSync(join(tmpdir(), 'gatehouse-draft-')), 'draft.yaml');
    writeFileSync(file, DENY_ECHO_DRAFT);
    await page.setInputFiles('#draft-file', file);
    await expect.poll(() => page.inputValue('#draft')).toContain('no-echo'); // policy.js read the file in
    await page.selectOption('#replay-window', '1h');
    await page.click('#replay');
    await page.waitForSelector('#changes');
    expect(await page.textContent('#changed')).toBe('3');
    const change = await page.textContent('#changes tbody tr');
    expect(change).toMatch(/allow\s*deny\s*3\s*no-echo/);
    expect(change).toContain('fx__echo');
    await page.locator('#replay-report').scrollIntoViewIfNeeded();
    await screenshot(page, 'policy');

    await page.fill('#draft', 'version: 2\nrules: [');
    await page.click('#replay');
    await page.waitForSelector('#replay-error');
    expect(await page.textContent('#replay-error')).toContain('GH_ERR_POLICY_INVALID');
    expect(errors.filter((e) => !/status of 400 .*\/policy\/replay$/.test(e))).toEqual([]); // the refused draft's own answer
  });

  it('shows the upstream up, and each of its tools with its pinned digest and whom it is listed for', async () => {
    const { page, errors } = await open('/upstreams');
    expect(await page.textContent('[data-upstream="fx"] .health')).toBe('up');
    const digests = await page.locator('[data-upstream="fx"] td.digest').allTextContents();
    expect(digests.sort()).toEqual(h.gateway.catalog.entries().map((e) => e.digest).sort());
    expect(await page.textContent('tr[data-tool="fx__crash"] td.listing')).toContain('nobody');
    expect(await page.textContent('tr[data-tool="fx__echo"] td.listing')).toContain('everyone');
    expect(await page.textContent('#dlq')).toMatch(/Dead-letter queue: 0 jobs/); // the local user is an admin
    await screenshot(page, 'upstreams');
    expect(errors).toEqual([]);
  });

  it("draws the overview's charts from its JSON after a known mix of calls", async () => {
    const { page, errors } = await open('/');
    await page.waitForSelector('body[data-overview="drawn"]');
    expect(await page.locator('#calls-chart svg rect.bar[data-decision="allow"]').count()).toBeGreaterThan(0);
    expect(await page.locator('#calls-chart svg rect.bar[data-decision="deny"]').count()).toBeGreaterThan(0);
    expect(await page.textContent('#calls-chart .legend')).toMatch(/allow \(3\).*deny \(1\)/s);
    expect(await page.locator('#duration-chart svg polyline.series').count()).toBeGreaterThanOrEqual(2);
    expect(await page.textContent('#overview-status')).toContain('4 calls in the last hour');
    // The chain's first verification runs in the background: the next load shows it.
    await h.gateway.httpServices().approver.console?.chain?.settled('default');
    await page.reload();
    await page.waitForSelector('#chain-status');
    expect(await page.textContent('#chain-status')).toBe('verified');
    await screenshot(page, 'overview');
    expect(errors).toEqual([]);
  });
});
