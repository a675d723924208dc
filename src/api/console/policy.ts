import { html } from '../html.ts';
import type { ConsolePage } from './page.ts';

/** The Policy page: a placeholder until it is built. */
export const policyPage: ConsolePage = {
  path: '/policy',
  section: 'policy',
  role: 'viewer',
  async render() {
    return { title: 'Policy', body: html`<h1>Policy</h1><p class="muted">The loaded bundle and snapshot, rule hit counts, an explain form and a draft replay land here.</p>` };
  },
};
