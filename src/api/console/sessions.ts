import { GatewayError } from '../../errors.ts';
import type { AuditCall } from '../../audit/query.ts';
import { html, type SafeHtml } from '../html.ts';
import type { ConsolePage } from './page.ts';

/** Calls read to list the recent sessions; one session's timeline shows this many per page. */
const RECENT_CALLS = 500;
const TIMELINE_CALLS = 200;

interface SessionRow {
  id: string;
  principal: string;
  client: AuditCall['client'];
  first: number;
  last: number;
  calls: number;
  denied: number;
}

/**
 * Sessions: the client sessions of the recent calls (client name and version, principal, era), and one session's
 * calls as a timeline. Both are queries over the audit trail (`/api/audit?session=`), not a store of their own.
 */
export const sessionsPage: ConsolePage = {
  path: '/sessions',
  section: 'sessions',
  role: 'viewer',
  async render({ request, user, services }) {
    if (!services.audit) throw new GatewayError('GH_ERR_NOT_IMPLEMENTED', 'this gateway has no audit store to read sessions from');
    const q = request.query as Record<string, unknown>;
    const session = typeof q.session === 'string' && q.session ? q.session : undefined;
    const cursor = typeof q.cursor === 'string' && q.cursor ? q.cursor : undefined;
    if (!session) {
      const { calls } = await services.audit.calls(user.tenant, {}, { limit: RECENT_CALLS });
      return { title: 'Sessions', wide: true, body: sessionList(sessionsOf(calls)) };
    }
    const page = await services.audit.calls(user.tenant, { session }, { limit: TIMELINE_CALLS, ...(cursor ? { cursor } : {}) });
    return { title: `Session ${session.slice(0, 8)}`, wide: true, body: timeline(session, page.calls, page.next) };
  },
};

function sessionsOf(calls: readonly AuditCall[]): SessionRow[] {
  const rows = new Map<string, SessionRow>();
  for (const call of calls) {
    if (!call.session) continue;
    let row = rows.get(call.session);
    if (!row) rows.set(call.session, (row = { id: call.session, principal: call.principal, client: call.client, first: call.at, last: call.at, calls: 0, denied: 0 }));
    row.calls += 1;
    if (call.outcome === 'denied') row.denied += 1;
    row.first = Math.min(row.first, call.at);
    row.last = Math.max(row.last, call.at);
    row.client ??= call.client;
  }
  return [...rows.values()];
}

function sessionList(rows: readonly SessionRow[]): SafeHtml {
  return html`<h1>Sessions</h1>
<p class="muted">The client sessions of the last ${RECENT_CALLS} calls, most recently active first. Calls of the 2026-07-28 era are stateless and belong to no session.</p>
${
  rows.length === 0
    ? html`<p class="muted">No sessions yet.</p>`
    : html`<div class="scroll"><table id="sessions"><thead><tr><th scope="col">Session</th><th scope="col">Client</th><th scope="col">Era</th><th scope="col">Principal</th><th scope="col">Calls</th><th scope="col">Denied</th><th scope="col">First call</th><th scope="col">Last call</th></tr></thead>
<tbody>${rows.map(
        (r) =>
          html`<tr><td class="mono"><a href="sessions?session=${encodeURIComponent(r.id)}">${r.id}</a></td><td>${clientName(r.client)}</td><td>${r.client?.era ?? '—'}</td><td>${r.principal}</td><td>${r.calls}</td><td>${r.denied}</td><td>${time(r.first)}</td><td>${time(r.last)}</td></tr>`,
      )}</tbody></table></div>`
}`;
}

function timeline(session: string, newestFirst: readonly AuditCall[], next: string | undefined): SafeHtml {
  const calls = [...newestFirst].reverse();
  const first = calls[0];
  return html`<h1>Session <span class="mono">${session}</span></h1>
<p><a href="sessions">All sessions</a> · <a href="activity?session=${encodeURIComponent(session)}">Live feed of this session</a></p>
${
  first
    ? html`<section class="card"><dl><dt>Client</dt><dd>${clientName(first.client)}</dd><dt>Era</dt><dd>${first.client?.era ?? '—'}</dd><dt>Principal</dt><dd>${first.principal}</dd><dt>Calls shown</dt><dd>${calls.length}, from ${time(first.at)}</dd></dl></section>
<ol class="timeline" id="timeline">${calls.map(
        (c) =>
          html`<li><time datetime="${new Date(c.at).toISOString()}">+${fmt(c.at - first.at)}</time> <a class="mono" href="calls/${c.jobId}">${c.tool ?? c.jobId}</a> ${c.decision && html`<span class="state ${c.decision}">${c.decision}</span>`} <span class="state ${c.outcome}">${c.outcome}</span>${c.durationMs !== undefined ? ` in ${fmt(c.durationMs)}` : ''}${c.approval?.state ? ` · ${c.approval.state}${c.approval.by ? ` by ${c.approval.by}` : ''}` : ''}${c.ruleIds.length ? html` <span class="muted">${c.ruleIds.join(', ')}</span>` : ''}</li>`,
      )}</ol>${next && html`<p><a href="sessions?session=${encodeURIComponent(session)}&amp;cursor=${next}">Earlier calls</a></p>`}`
    : html`<p class="muted">No calls of this session in the audit trail.</p>`
}`;
}

function clientName(client: AuditCall['client']): string {
  return client?.name ? `${client.name}${client.version ? ` ${client.version}` : ''}` : 'not recorded';
}

const time = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
const fmt = (ms: number) => (ms < 1000 ? `${ms} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60_000)} min`);
