import type { ApprovalRecord } from '../protocol/approval-record.ts';
import { argsCutNote, argsSummaryOf } from '../approvals/preview.ts';
import { hasRole } from './access.ts';
import { grantAndEditForms } from './approval-extras.ts';
import { html, SafeHtml } from './html.ts';
import { layout as consoleLayout, type SignedIn } from './console/layout.ts';
import { messagePage as consoleMessagePage } from './console/admit.ts';

/**
 * The approval pages: server-rendered HTML in the console's frame (its navigation and stylesheet), no script, a
 * few KB each. Links are relative, so the pages also work behind a proxy under a path prefix.
 */

/**
 * Where a page sits: `/approvals` itself, one level below it (`/approvals/<id>`, `/approvals/login`), or two
 * (`/approvals/<id>/arguments.json`, which answers with a page when it refuses).
 */
export type PageDepth = 'list' | 'below' | 'file';

/** The relative way from a page to the list's children (login, logout, an approval). */
const CHILD: Record<PageDepth, string> = { list: 'approvals/', below: '', file: '../' };

/** The relative link from a page at `depth` to `/approvals/<name>`. */
export function childLink(depth: PageDepth, name: string): string {
  return `${CHILD[depth]}${name}`;
}

/** Longer values (characters) or more lines are folded on the page, the whole value one click away. */
const FOLD_CHARS = 240;
const FOLD_LINES = 6;

export type { SignedIn };

/** The relative way from a page at each depth to the console's root. */
export const ROOT_OF: Record<PageDepth, string> = { list: './', below: '../', file: '../../' };

interface Layout {
  title: string;
  depth: PageDepth;
  me?: SignedIn;
}

function layout(page: Layout, body: SafeHtml): string {
  return consoleLayout({ title: page.title, section: 'approvals', body, root: ROOT_OF[page.depth], ...(page.me ? { me: page.me } : {}) });
}

export function listPage(records: ApprovalRecord[], options: { me: SignedIn; now: number; showing: 'pending' | 'all' }): string {
  const heading = options.showing === 'pending' ? 'Waiting for a decision' : 'All approvals';
  return layout(
    { title: 'Approvals', depth: 'list', me: options.me },
    html`<h1>${heading}</h1>
<nav class="muted"><a href="?state=pending">Pending</a><a href="?state=all">All</a></nav><p></p>
${records.length === 0 ? html`<p class="muted">Nothing here.</p>` : records.map((r) => html`<a class="card" href="approvals/${r.id}"><strong>${r.tool}</strong> <span class="state ${r.state}">${r.state}</span>
<div>${r.principal} asks: ${r.reason}</div><div class="args">${argsSummaryOf(r)}</div><div class="muted">${r.state === 'pending' ? `expires ${relative(r.expiresAt, options.now)}` : `asked ${relative(r.createdAt, options.now)}`} · ${r.id}</div></a>`)}`,
  );
}

export interface DetailOptions {
  me: SignedIn;
  now: number;
  /** The decision form's CSRF token; the form is shown only while the approval is pending. */
  csrfToken: string;
  error?: string;
}

export function detailPage(record: ApprovalRecord, options: DetailOptions): string {
  const extra = record as Partial<{ quorum: number; votes: { actor: string }[]; approvers: string[] }>;
  const votes = extra.quorum && extra.quorum > 1 ? html`<dt>Votes</dt><dd>${extra.votes?.length ?? 0} of ${extra.quorum}${extra.votes?.length ? `: ${extra.votes.map((v) => v.actor).join(', ')}` : ''}</dd>` : undefined;
  const expiry = record.state === 'pending' || record.state === 'approved' ? html`<dt>Expires</dt><dd><time datetime="${iso(record.expiresAt)}">${relative(record.expiresAt, options.now)}</time></dd>` : undefined;
  return layout(
    { title: `${record.tool} · ${record.state}`, depth: 'below', me: options.me },
    html`${options.error && html`<p class="error" role="alert">${options.error}</p>`}
<h1>${record.tool} <span class="state ${record.state}" id="state">${record.state}</span></h1>
<section class="card"><dl>
<dt>Asked by</dt><dd>${record.principal}</dd>
<dt>Tenant</dt><dd>${record.tenant}</dd>
<dt>Server</dt><dd>${record.server}</dd>
<dt>Tool</dt><dd>${record.tool}</dd>
<dt>Reason</dt><dd>${record.reason}</dd>
<dt>Rules</dt><dd>${record.ruleIds.join(', ') || '—'}</dd>
${expiry}${extra.approvers && html`<dt>Approvers</dt><dd>${extra.approvers.join(', ') || 'nobody'}</dd>`}${votes}
<dt>Asked</dt><dd><time datetime="${iso(record.createdAt)}">${relative(record.createdAt, options.now)}</time></dd>
</dl>
${argumentsSection(record)}</section>
${record.state === 'pending' && (hasRole(options.me.role, 'approver') ? html`${decisionForm(options.csrfToken)}${grantAndEditForms(record, options.csrfToken)}` : html`<p class="note">Deciding takes the approver role; you are signed in as ${options.me.role}.</p>`)}
<section class="card"><strong>History</strong><ol>${record.history.map(
      (t) => html`<li><span class="state ${t.state}">${t.state}</span> by ${t.actor}${t.via === 'link' && ' (by link)'}, <time datetime="${iso(t.at)}">${relative(t.at, options.now)}</time>${t.reason && html` — ${t.reason}`}</li>`,
    )}</ol></section>
<p class="muted">${record.id}</p>`,
  );
}

/**
 * The whole redacted arguments, one row per top-level argument: text as it is, anything else as JSON. A long
 * value is folded into a <details> (the page runs no script) with its first characters as the summary.
 */
function argumentsSection(record: ApprovalRecord): SafeHtml {
  const note = record.argsCut && html`<p class="note">${argsCutNote(record.argsCut)}</p>`;
  if (!record.redactedArgs) {
    return html`<p class="muted sub">Arguments (secrets redacted)${!record.argsCut && ', as previewed by the version that asked'}</p>${note}<pre>${record.argsPreview}</pre>`;
  }
  const entries = Object.entries(record.redactedArgs);
  return html`<p class="muted sub">Arguments (secrets redacted) · <a href="${record.id}/arguments.json" download>download arguments.json</a></p>${note}
${entries.length === 0 ? html`<p class="muted">No arguments.</p>` : html`<dl class="args">${entries.map(([key, value]) => html`<dt>${key}</dt><dd>${valueHtml(value)}</dd>`)}</dl>`}`;
}

function valueHtml(value: unknown): SafeHtml {
  if (value === '') return html`<span class="muted">(empty text)</span>`;
  const short = typeof value === 'string' ? value : JSON.stringify(value);
  const lines = short.split('\n').length;
  if (short.length <= FOLD_CHARS && lines <= FOLD_LINES) return html`<pre>${short}</pre>`;
  const whole = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  const head = short.slice(0, 80).split('\n')[0];
  return html`<details><summary>${head}… <span class="muted">(${short.length} characters${lines > 1 ? `, ${lines} lines` : ''}; show all)</span></summary><pre>${whole}</pre></details>`;
}

function decisionForm(csrfToken: string): SafeHtml {
  return html`<form class="card" method="post"><input type="hidden" name="csrf" value="${csrfToken}">
<label for="reason">Reason (optional)</label><textarea id="reason" name="reason" maxlength="1000"></textarea>
<div class="actions"><button class="approve" name="decision" value="approve">Approve</button><button class="deny" name="decision" value="deny">Deny</button></div></form>`;
}


export function messagePage(title: string, message: string, depth: PageDepth = 'below', me?: SignedIn): string {
  return consoleMessagePage(title, message, ROOT_OF[depth], me);
}

/** "in 14 min", "3 s ago": what a human wants to know about a deadline at a glance. */
export function relative(at: number, now: number): string {
  const diff = at - now;
  const s = Math.round(Math.abs(diff) / 1000);
  const amount = s < 60 ? `${s} s` : s < 3600 ? `${Math.round(s / 60)} min` : s < 86_400 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86_400)} d`;
  return diff >= 0 ? `in ${amount}` : `${amount} ago`;
}

const iso = (ms: number) => new Date(ms).toISOString();
