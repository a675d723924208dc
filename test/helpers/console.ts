import type { GatehouseConfig } from '../../src/config/schema.ts';
import type { Harness } from './gateway-harness.ts';
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
