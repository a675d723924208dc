import type { ApprovalRecord } from '../protocol/approval-record.ts';
import { argsCutNote, argsSummaryOf } from '../approvals/preview.ts';
import { html, SafeHtml } from './html.ts';

/**
 * The approval pages: server-rendered HTML, one inline stylesheet, no script and no external asset (the CSP
 * forbids both), a few KB each. Links are relative, so the pages also work behind a proxy under a path prefix.
 */

/**
 * Where a page sits: `/approvals` itself, one level below it (`/approvals/<id>`, `/approvals/login`), or two
 * (`/approvals/<id>/arguments.json`, which answers with a page when it refuses).
 */
export type PageDepth = 'list' | 'below' | 'file';

/** The relative way from a page to the list, and to the list's children (login, logout). */
const WAY: Record<PageDepth, { list: string; child: string }> = {
  list: { list: 'approvals', child: 'approvals/' },
  below: { list: '../approvals', child: '' },
  file: { list: '../../approvals', child: '../' },
};

/** The relative link from a page at `depth` to `/approvals/<name>`. */
export function childLink(depth: PageDepth, name: string): string {
  return `${WAY[depth].child}${name}`;
}

/** Longer values (characters) or more lines are folded on the page, the whole value one click away. */
const FOLD_CHARS = 240;
const FOLD_LINES = 6;

export interface SignedIn {
  principal: string;
  tenant: string;
  /** The logout form's CSRF token; undefined for the local user, who has no session to end. */
  logoutToken: string | undefined;
}

interface Layout {
  title: string;
  depth: PageDepth;
  me?: SignedIn;
  /** Reload the page at once (see `reloadPage`). */
  reload?: boolean;
}

const STYLE = new SafeHtml(`
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f4f5f7}
header{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;justify-content:space-between;padding:.6rem 1rem;background:#1b1f24;color:#fff}
header a{color:#fff;font-weight:600;text-decoration:none}
header form{display:flex;gap:.5rem;align-items:center;margin:0;font-size:.9rem}
main{max-width:44rem;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.2rem 0 .8rem;word-break:break-word}
.card{display:block;background:#fff;border:1px solid #d8dce1;border-radius:.5rem;padding:.9rem 1rem;margin:0 0 .8rem;color:inherit;text-decoration:none}
a.card:hover{border-color:#7a8896}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem .9rem;margin:0}
dt{color:#59636e}
dd{margin:0;word-break:break-word}
pre{white-space:pre-wrap;word-break:break-all;background:#f0f2f4;border-radius:.3rem;padding:.6rem;margin:.3rem 0 0;font-size:.85rem;max-height:22rem;overflow:auto}
.state{display:inline-block;padding:.1rem .55rem;border-radius:1rem;font-size:.85rem;font-weight:600;background:#e1e4e8}
.pending{background:#fff1c2;color:#6b4a00}.approved,.consumed{background:#d3f5dc;color:#0d5524}.denied{background:#ffd9d6;color:#86120b}
.muted{color:#59636e;font-size:.9rem}.sub{margin:.8rem 0 0}
.error{background:#ffd9d6;color:#86120b;border-radius:.4rem;padding:.6rem .8rem;margin:0 0 .8rem}
label{display:block;font-weight:600;margin:0 0 .3rem}
textarea,input[type=password]{width:100%;font:inherit;padding:.6rem;border:1px solid #b4bcc5;border-radius:.4rem}
textarea{min-height:4.5rem}
.actions{display:flex;gap:.7rem;margin-top:.8rem}
button{font:inherit;font-weight:600;min-height:3rem;padding:.6rem 1.2rem;border:0;border-radius:.45rem;cursor:pointer;background:#3d4c5c;color:#fff}
.actions button{flex:1}
button.approve{background:#16813a}button.deny{background:#b4231a}
header button{min-height:2.2rem;padding:.3rem .8rem;background:#3d4c5c}
ol{padding-left:1.2rem;margin:.3rem 0 0}
nav a{margin-right:1rem}
.args{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem;overflow-wrap:anywhere;margin-top:.3rem}
dl.args{margin-top:.5rem}
details summary{cursor:pointer;overflow-wrap:anywhere}
.note{background:#fff1c2;color:#6b4a00;border-radius:.4rem;padding:.5rem .7rem;margin:.5rem 0}
`);

function layout(page: Layout, body: SafeHtml): string {
  const list = WAY[page.depth].list;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
${page.reload && html`<meta http-equiv="refresh" content="0">`}
<title>${page.title} · Gatehouse</title><style>${STYLE}</style></head>
<body><header><a href="${list}">Gatehouse approvals</a>${page.me && html`<form method="post" action="${childLink(page.depth, 'logout')}"><span>${page.me.principal} · ${page.me.tenant}</span>${page.me.logoutToken && html`<input type="hidden" name="csrf" value="${page.me.logoutToken}"><button>Sign out</button>`}</form>`}</header>
<main>${body}</main></body></html>`.value;
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
${record.state === 'pending' && decisionForm(options.csrfToken)}
<section class="card"><strong>History</strong><ol>${record.history.map(
      (t) => html`<li><span class="state ${t.state}">${t.state}</span> by ${t.actor}, <time datetime="${iso(t.at)}">${relative(t.at, options.now)}</time>${t.reason && html` — ${t.reason}`}</li>`,
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

export function loginPage(options: { next: string; csrfToken: string; error?: string }): string {
  return layout(
    { title: 'Sign in', depth: 'below' },
    html`<h1>Sign in to approve</h1>${options.error && html`<p class="error" role="alert">${options.error}</p>`}
<form class="card" method="post" action="login"><input type="hidden" name="csrf" value="${options.csrfToken}"><input type="hidden" name="next" value="${options.next}">
<label for="key">Approver API key</label><input id="key" name="key" type="password" autocomplete="current-password" required>
<div class="actions"><button>Sign in</button></div></form>
<p class="muted">Use an API key from auth.apiKeys that has roles: [approver].</p>`,
  );
}

/** A page that reloads itself at once, so that the reload, a same-site navigation, carries the session cookie. */
export function reloadPage(depth: PageDepth): string {
  return layout({ title: 'Opening…', depth, reload: true }, html`<p class="muted">Opening…</p>`);
}

export function messagePage(title: string, message: string, depth: PageDepth = 'below', me?: SignedIn): string {
  return layout({ title, depth, ...(me ? { me } : {}) }, html`<h1>${title}</h1><p class="error" role="alert">${message}</p>`);
}

/** "in 14 min", "3 s ago": what a human wants to know about a deadline at a glance. */
export function relative(at: number, now: number): string {
  const diff = at - now;
  const s = Math.round(Math.abs(diff) / 1000);
  const amount = s < 60 ? `${s} s` : s < 3600 ? `${Math.round(s / 60)} min` : s < 86_400 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86_400)} d`;
  return diff >= 0 ? `in ${amount}` : `${amount} ago`;
}

const iso = (ms: number) => new Date(ms).toISOString();
