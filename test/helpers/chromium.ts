import { existsSync } from 'node:fs';
import { describe, it } from 'vitest';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from './gateway-harness.ts';

/** Debian's chromium, which `.ci/run` installs when it is missing; CHROMIUM_PATH points elsewhere. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const chromiumAvailable = existsSync(CHROMIUM);
const inCi = process.env.CI === 'true' || process.env.CI === '1';

/** Without Chromium a browser suite is skipped with a warning, except in CI, where this suite fails instead. */
export function requireChromium(suite: string): void {
  if (!chromiumAvailable && !inCi) console.warn(`\n*** SKIPPING ${suite}: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH) ***\n`);
  describe.runIf(!chromiumAvailable && inCi)(suite, () => {
    it('has Chromium to run in (CI must install it)', () => {
      throw new Error(`no Chromium at ${CHROMIUM}: .ci/run installs Debian's chromium package`);
    });
  });
}

/** Headless Chromium; as root (CI, containers) it refuses to start with its sandbox. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
}

/**
 * Saves the README's screenshot of a console page, `docs/console-<name>.png`, only when GATEHOUSE_SCREENSHOTS=1 (so
 * the suite never dirties the tree). `fullPage: false` keeps the viewport alone (a feed that keeps growing).
 */
export async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  if (process.env.GATEHOUSE_SCREENSHOTS !== '1') return;
  await page.screenshot({ path: join(ROOT, 'docs', `console-${name}.png`), fullPage: options.fullPage ?? true });
}
