import { mkdtempSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ROOT } from '../helpers/gateway-harness.ts';
import { CHROMIUM, chromiumAvailable } from '../helpers/chromium.ts';
import { call, codeOf, packSuite, textOf } from '../helpers/pack-suite.ts';

// The browser pack in front of the real @playwright/mcp, which drives Debian's Chromium headless (it downloads no
// browser: --executable-path). Listing and the decisions need no browser; the navigation that runs does, and is
// skipped (loudly) without one.

let page: Server;
let pageUrl = '';
beforeAll(async () => {
  // The page's own script calls its API with a bearer token: what browser_network_request would show the model.
  const html = "<title>Gatehouse test page</title><form><input name=q></form><script>fetch('/api', { headers: { Authorization: 'Bearer tok-9f8e7d' } })</script>";
  page = createServer((req, res) => (req.url === '/api' ? res.setHeader('content-type', 'application/json').end('{}') : res.setHeader('content-type', 'text/html').end(html)));
  await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
  pageUrl = `http://127.0.0.1:${(page.address() as { port: number }).port}/`;
});
afterAll(() => new Promise<void>((resolve) => page.close(() => resolve())));

if (!chromiumAvailable) console.warn(`\n*** the browser pack's navigation that runs is SKIPPED: no Chromium at ${CHROMIUM} ***\n`);
const work = mkdtempSync(join(tmpdir(), 'gh-pack-browser-'));
const sandbox = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
packSuite(
  'browser',
  () => ({
    // cwd and --output-dir in a temp dir: the server saves snapshots there, never in the repository.
    upstream: {
      command: process.execPath,
      args: [join(ROOT, 'node_modules/@playwright/mcp/cli.js'), '--headless', '--isolated', '--executable-path', CHROMIUM, '--output-dir', work, ...sandbox],
      env: { PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' },
      cwd: work,
      timeout: 60_000,
    },
    params: { allowHosts: ['127.0.0.1'] },
  }),
  ({ client }) => {
    it('refuses a navigation to a host allowHosts does not name, before the browser is asked', async () => {
      const denied = await call(client(), 'browser__browser_navigate', { url: 'https://example.com/' });
      expect(codeOf(denied)).toBe('GH_ERR_EGRESS_DENIED');
      expect(codeOf(await call(client(), 'browser__browser_tabs', { action: 'new', url: 'http://169.254.169.254/latest/meta-data/' }))).toBe('GH_ERR_EGRESS_DENIED');
      expect(codeOf(await call(client(), 'browser__browser_navigate', { url: 'file:///etc/passwd' }))).toBe('GH_ERR_EGRESS_DENIED');
    });

    it("refuses Playwright code in the server's process, and holds JavaScript in the page and typing for a human", async () => {
      const code = await call(client(), 'browser__browser_run_code_unsafe', { code: "async () => require('fs').writeFileSync('pwned', 'x')" });
      expect(codeOf(code)).toBe('GH_ERR_POLICY_DENIED');
      expect(readdirSync(work)).not.toContain('pwned');
      expect(codeOf(await call(client(), 'browser__browser_evaluate', { function: '() => document.cookie' }))).toBe('GH_ERR_APPROVAL_PENDING');
      expect(codeOf(await call(client(), 'browser__browser_type', { element: 'q', target: 'e2', text: 'secret' }))).toBe('GH_ERR_APPROVAL_PENDING');
    });

    it.skipIf(!chromiumAvailable)('lets the browser open an allowed local page and read it', async () => {
      const opened = await call(client(), 'browser__browser_navigate', { url: pageUrl });
      expect(opened.isError, textOf(opened)).toBeFalsy();
      expect(textOf(opened)).toContain('Gatehouse test page');
      const snapshot = await call(client(), 'browser__browser_snapshot', {});
      expect(snapshot.isError, textOf(snapshot)).toBeFalsy();
      expect(textOf(snapshot)).toContain('textbox');
    }, 60_000);

    it.skipIf(!chromiumAvailable)("masks the authorization header in a network request's details", async () => {
      const listed = textOf(await call(client(), 'browser__browser_network_requests', { static: true }));
      const index = Number(/(\d+)\. \[GET\] \S+\/api /.exec(listed)?.[1]);
      expect(index, listed).toBeGreaterThan(0);
      const details = await call(client(), 'browser__browser_network_request', { index });
      expect(textOf(details)).toContain('[REDACTED]');
      expect(textOf(details)).not.toContain('tok-9f8e7d');
    });
  },
);
