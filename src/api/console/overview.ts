import { html } from '../html.ts';
import type { ConsolePage } from './page.ts';

/** The Overview page: a placeholder until it is built. */
export const overviewPage: ConsolePage = {
  path: '/',
  section: 'overview',
  role: 'viewer',
  async render() {
    return { title: 'Overview', body: html`<h1>Overview</h1><p class="muted">Charts of calls per minute by decision, p50/p95 duration (Gatehouse and upstream), approvals pending and their wait, and the audit chain status land here.</p>` };
  },
};
