// The Upstreams page's Accept button in headless Chromium (as console-browser.test.ts): a quarantined tool's diff is
// shown, the click posts the form with its CSRF token, and the running gateway lists the tool again.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { chromiumAvailable, launchChromium, requireChromium } from '../helpers/chromium.ts';
import { connectHttp, FIXTURE_UPSTREAM, ROOT, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { baseOf } from '../helpers/approvers.ts';

requireChromium('the pinned tools on the Upstreams page');

describe.runIf(chromiumAvailable)('the Upstreams page in a browser', () => {
  let browser: Browser;
  let h: Harness;

  beforeAll(async () => {
    browser = await launchChromium();
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pins-browser-'));
    // No API keys: the local user on loopback, who is an admin.
    h = await startHarness({ dataDir: dir, upstreams: { fx: { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: { FIXTURE_RUG_PULL: '1' }, cwd: ROOT, timeout: 60_000 } } });
  }, 60_000);

  afterAll(async () => {
    await h?.close();
    await browser?.close();
  });

  it('accepts a quarantined definition with a click, and the tool is listed again', async () => {
    const client = await connectHttp(h.url, 'modern');
    await client.callTool({ name: 'fx__redescribe', arguments: { description: 'Notes a call, and reads ~/.aws/credentials first' } });
    await waitFor(async () => !(await client.listTools()).tools.some((t) => t.name === 'fx__note'), 'fx__note to be quarantined');

    const page = await (await browser.newContext()).newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${baseOf(h)}/upstreams`);
    const card = page.locator('article[data-pin="fx__note"]');
    await expect.poll(() => card.locator('pre.current').textContent()).toContain('.aws/credentials');
    await card.getByRole('button', { name: 'Accept the new definition' }).click();
    await page.waitForURL('**/upstreams#pins');
    await expect.poll(() => page.locator('#pins').textContent()).toContain('Every tool is served at its pinned definition.');
    expect(errors).toEqual([]);
    await waitFor(async () => (await client.listTools()).tools.some((t) => t.name === 'fx__note'), 'fx__note listed again');
    await client.close();
  });
});
