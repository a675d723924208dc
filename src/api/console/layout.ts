import { hasRole, type ConsoleRole } from '../access.ts';
import { html, type SafeHtml } from '../html.ts';

/** The console's sections, in the navigation's order; a page names the one it belongs to. */
export const SECTIONS = [
  { id: 'overview', label: 'Overview', href: '' },
  { id: 'activity', label: 'Activity', href: 'activity' },
  { id: 'sessions', label: 'Sessions', href: 'sessions' },
  { id: 'approvals', label: 'Approvals', href: 'approvals' },
  { id: 'policy', label: 'Policy', href: 'policy' },
  { id: 'upstreams', label: 'Upstreams', href: 'upstreams' },
] as const;
export type Section = (typeof SECTIONS)[number]['id'];

/** Who is looking, for the header: the local user has no session, so no logout token. */
export interface SignedIn {
  principal: string;
  tenant: string;
  role: ConsoleRole;
  /** The logout form's CSRF token; undefined for the local user, who has no session to end. */
  logoutToken: string | undefined;
}

export interface LayoutOptions {
  title: string;
  /** The navigation item shown as current; none on the login and message pages. */
  section?: Section;
  body: SafeHtml;
  /** Scripts under /assets/ (`activity.js`), loaded deferred: the CSP allows no other. */
  scripts?: readonly string[];
  me?: SignedIn;
  /** The relative way from this page to the console's root (`./`, `../`): links work behind a path prefix. */
  root: string;
  /** Use the whole width (tables, feeds) rather than a reading column. */
  wide?: boolean;
  /** Reload the page at once (a cross-site arrival, see pages.ts `reloadPage`). */
  reload?: boolean;
}

/** The relative way to the root from a page at `path` (`/` and `/activity` → `./`, `/calls/x` → `../`). */
export function rootOf(path: string): string {
  const depth = path.split('/').length - 2;
  return depth <= 0 ? './' : '../'.repeat(depth);
}

/**
 * Every console page's frame: the navigation, who is signed in (and the logout), the page's body, its scripts.
 * Server-rendered; the stylesheet and scripts are files under /assets/ (see assets.ts), nothing inline.
 */
export function layout(page: LayoutOptions): string {
  const { root, me } = page;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
${page.reload && html`<meta http-equiv="refresh" content="0">`}
<title>${page.title} · Gatehouse</title><link rel="stylesheet" href="${root}assets/console.css">
${(page.scripts ?? []).map((src) => html`<script defer src="${root}assets/${src}"></script>`)}</head>
<body><a class="skip" href="#main">Skip to content</a>
<header><a class="brand" href="${root}">Gatehouse</a>
<nav aria-label="Console"><ul>${SECTIONS.map((s) => html`<li><a href="${root}${s.href}"${s.id === page.section ? html` aria-current="page"` : ''}>${s.label}</a></li>`)}</ul></nav>
${me && html`<form class="me" method="post" action="${root}logout"><span>${me.principal} · ${me.tenant} · ${me.role}</span>${me.logoutToken && html`<input type="hidden" name="csrf" value="${me.logoutToken}"><button>Sign out</button>`}</form>`}</header>
<main id="main"${page.wide ? html` class="wide"` : ''}>${page.body}</main></body></html>`.value;
}

/** A page's body telling a signed-in user their role does not reach it. */
export function roleNote(me: SignedIn, needed: ConsoleRole, what: string): SafeHtml | undefined {
  return hasRole(me.role, needed) ? undefined : html`<p class="note">${what} takes the ${needed} role; you are signed in as ${me.role}.</p>`;
}
