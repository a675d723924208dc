import { html } from '../html.ts';
import type { ConsolePage } from './page.ts';

/** The Activity page: a placeholder until it is built. */
export const activityPage: ConsolePage = {
  path: '/activity',
  section: 'activity',
  role: 'viewer',
  async render() {
    return { title: 'Activity', body: html`<h1>Activity</h1><p class="muted">Coming next.</p>` };
  },
};
