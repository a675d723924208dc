import { html } from '../html.ts';
import type { ConsolePage } from './page.ts';

/** The Sessions page: a placeholder until it is built. */
export const sessionsPage: ConsolePage = {
  path: '/sessions',
  section: 'sessions',
  role: 'viewer',
  async render() {
    return { title: 'Sessions', body: html`<h1>Sessions</h1><p class="muted">Coming next.</p>` };
  },
};
