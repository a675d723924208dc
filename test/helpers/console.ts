import { afterEach } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import type { GatehouseConfig } from '../../src/config/schema.ts';
import { startHarness, type Harness } from './gateway-harness.ts';
import { approverAuth } from './approvers.ts';
import { csrfOf, PageClient, type PageAnswer } from './page-client.ts';

/** The approver tests' keys, and a viewer's. */
export const VIEWER_KEY = 'viewer-key-vera-0123456789';
export const consoleAuth: NonNullable<GatehouseConfig['auth']> = {
  apiKeys: [...approverAuth.apiKeys, { key: VIEWER_KEY, principal: 'vera', tenant: 'default', roles: ['viewer'] }],
};

/** Signs a page client in through the console's own login form (/login), returning the POST's answer. */
export async function consoleLogin(browser: PageClient, key: string, next = ''): Promise<PageAnswer> {
  const form = await browser.get(`/login${next ? `?next=${encodeURIComponent(next)}` : ''}`);
  return browser.post('/login', { csrf: csrfOf(form.html), next, key });
}

export const pageClient = (h: Harness): PageClient => new PageClient(h);

/**
 * Gateways a test file starts (with `config()`'s settings and the given auth), and the clients it connects to
 * them: all closed after each test.
 */
export function consoleHarnesses(config: () => Parameters<typeof startHarness>[0] = () => ({})): { clients: Client[]; harness(auth?: typeof consoleAuth): Promise<Harness> } {
  const harnesses: Harness[] = [];
  const clients: Client[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(harnesses.splice(0).map((h) => h.close()));
  });
  return {
    clients,
    async harness(auth) {
      const h = await startHarness({ ...config(), ...(auth ? { auth } : {}) });
      harnesses.push(h);
      return h;
    },
  };
}
