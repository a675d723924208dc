import { html } from '../html.ts';
import type { ConsolePage } from './page.ts';

/** The Upstreams page: a placeholder until it is built. */
export const upstreamsPage: ConsolePage = {
  path: '/upstreams',
  section: 'upstreams',
  role: 'viewer',
  async render() {
    return { title: 'Upstreams', body: html`<h1>Upstreams</h1><p class="muted">Upstream health and restarts, and each tool with its pinned digest, annotations, risk tags and whether the policy lets anyone call it land here.</p>` };
  },
};
