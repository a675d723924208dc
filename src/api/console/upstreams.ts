import type { CatalogEntry } from '../../call/catalog.ts';
import { hasRole } from '../access.ts';
import { html, type SafeHtml } from '../html.ts';
import type { ConsolePage, PageView } from './page.ts';
import type { UpstreamHealth } from './sources.ts';
import { pinnedToolsSection, registerPinDecisions } from './pinned-tools.ts';

/**
 * The Upstreams page: each upstream's health (up or down, why, restarts since start), and its tools with the
 * pinned definition digest, annotations, risk tags and whom the policy in force lists them for (the kernel's own
 * listing decision, `mayList`, for each principal the gateway knows in the tenant). Admins see the dead-letter
 * queue's size, and decide the changed tool definitions (pinned-tools.ts) that everyone sees.
 */
export const upstreamsPage: ConsolePage = {
  path: '/upstreams',
  section: 'upstreams',
  role: 'viewer',
  routes: registerPinDecisions,
  async render(view) {
    const sources = view.services.console;
    if (!sources) return { title: 'Upstreams', body: html`<h1>Upstreams and tools</h1><p class="note">This gateway does not report its upstreams to the console.</p>` };
    const principals = sources.principals(view.user.tenant);
    const who = principals.length > 0 ? principals : [view.user.principal];
    const tools = sources.tools();
    const dead = sources.deadLetters && hasRole(view.user.role, 'admin') ? await sources.deadLetters().catch(() => undefined) : undefined;
    const pins = await pinnedToolsSection(view).catch(() => html`<p class="card error" id="pins">The pinned tool definitions could not be read.</p>`);
    const body = html`<h1>Upstreams and tools</h1>
${sources.deadLetters && hasRole(view.user.role, 'admin') && html`<p class="card" id="dlq">Dead-letter queue: <strong>${dead === undefined ? 'unknown (the ledger did not answer)' : String(dead)}</strong> jobs (<code>gatehouse dlq list</code>)</p>`}
${pins}
${sources.upstreams().map((u) => upstreamCard(view, u, tools.filter((t) => t.server === u.name), who))}`;
    return { title: 'Upstreams', body, wide: true };
  },
};

function upstreamCard(view: PageView, upstream: UpstreamHealth, tools: readonly CatalogEntry[], principals: readonly string[]): SafeHtml {
  const up = upstream.state === 'ready';
  return html`<section class="card upstream" data-upstream="${upstream.name}" aria-labelledby="up-${upstream.name}">
<h2 id="up-${upstream.name}">${upstream.name} <span class="state ${up ? 'allow' : 'deny'} health">${up ? 'up' : upstream.state === 'starting' ? 'starting' : 'down'}</span></h2>
<dl><dt>Restarts</dt><dd class="restarts">${upstream.restarts}</dd>${upstream.pool && html`<dt>Worker pool</dt><dd>${upstream.pool}</dd>`}${upstream.failure && html`<dt>Last failure</dt><dd>${upstream.failure}</dd>`}<dt>Tools</dt><dd>${tools.length}</dd></dl>
${
  tools.length > 0 &&
  html`<div class="scroll"><table class="tools"><thead><tr><th scope="col">Tool</th><th scope="col">Definition digest</th><th scope="col">Annotations</th><th scope="col">Risk tags</th><th scope="col">Listed for</th></tr></thead><tbody>
${tools.map((t) => toolRow(view, t, principals))}</tbody></table></div>`
}</section>`;
}

function toolRow(view: PageView, entry: CatalogEntry, principals: readonly string[]): SafeHtml {
  const { facts } = entry;
  const kernel = view.services.kernel;
  const listed = principals.filter((principal) =>
    kernel.mayList({ tenant: view.user.tenant, principal, server: entry.server, tool: entry.id, annotations: facts.annotations, riskTags: facts.riskTags, labels: facts.labels }),
  );
  const annotations = Object.entries(facts.annotations ?? {}).filter(([, v]) => v !== undefined);
  return html`<tr data-tool="${entry.id}"><td class="mono">${entry.id}${facts.definitionChanged && html` <span class="state require_approval" title="its definition is not the pinned one: each call needs an approval until it is accepted">changed: calls need approval</span>`}${entry.tool.description && html`<div class="muted">${entry.tool.description}</div>`}</td>
<td class="mono digest">${entry.digest}</td>
<td>${annotations.length === 0 ? html`<span class="muted">none</span>` : annotations.map(([k, v]) => html`<div class="mono">${k}: ${String(v)}</div>`)}</td>
<td>${facts.riskTags.length === 0 ? html`<span class="muted">none</span>` : facts.riskTags.join(', ')}</td>
<td class="listing">${
    listed.length === 0
      ? html`<span class="state deny">nobody</span> <span class="muted">no rule lets ${principals.length === 1 ? principals[0] : 'any of them'} call it</span>`
      : listed.length === principals.length
        ? html`<span class="state allow">everyone</span> <span class="muted">(${principals.join(', ')})</span>`
        : html`${listed.join(', ')} <span class="muted">not ${principals.filter((p) => !listed.includes(p)).join(', ')}</span>`
  }</td></tr>`;
}
