import type { FastifyInstance } from 'fastify';
import { asGatewayError } from '../../errors.ts';
import { EFFECTS } from '../../kernel/effect.ts';
import { OUTCOMES, type AuditCall, type AuditFilter } from '../../audit/query.ts';
import { hasRole } from '../access.ts';
import { statusOf } from '../actions.ts';
import { filterOf } from '../audit-api.ts';
import { APPROVER_PAGE, SECURITY_HEADERS } from '../context.ts';
import { html, type SafeHtml } from '../html.ts';
import type { ConsolePage, ConsoleTools } from './page.ts';

/** Calls shown when the feed opens, before the live ones. */
const BACKLOG = 100;
/** How often a stream sends what gathered (ms): one event per interval, however many calls. */
const FLUSH_MS = 250;
/** A browser this far behind (bytes unsent) is dropped; its EventSource reconnects and starts again from the backlog. */
const MAX_UNSENT_BYTES = 1024 * 1024;
/** Calls a stream holds between flushes; beyond this the oldest are skipped. */
const MAX_HELD = 2_000;
const KEEPALIVE_MS = 15_000;

const FILTERS = ['tool', 'principal', 'session', 'decision', 'outcome'] as const;

/**
 * Activity: the live feed of tool calls, a tail of the audit trail (audit/tail.ts) over server-sent events at
 * /activity/stream. The filters apply on the server, to the backlog and to the stream; the page's script
 * (assets/activity.js) batches the rows into the table once per frame and keeps at most a few hundred.
 */
export const activityPage: ConsolePage = {
  path: '/activity',
  section: 'activity',
  role: 'viewer',
  async render({ request }) {
    const q = filledIn(request.query);
    const filter = filterOf(q); // a bad filter is a 400 here rather than a stream that never opens
    const query = new URLSearchParams(Object.entries(q).filter((e): e is [string, string] => typeof e[1] === 'string')).toString();
    return {
      title: 'Activity',
      wide: true,
      scripts: ['activity.js'],
      body: html`<h1>Activity</h1>
<form class="filters" method="get" action="activity" role="search" aria-label="Filter the feed">
${textFilter('tool', 'Tool (glob)', filter.tool)}${textFilter('principal', 'Principal', filter.principal)}${textFilter('session', 'Session', filter.session)}
${choice('decision', 'Decision', EFFECTS, filter.decision)}${choice('outcome', 'Outcome', OUTCOMES, filter.outcome)}
<button>Filter</button>${query && html`<a href="activity">Clear</a>`}
<button type="button" id="pause" aria-pressed="false">Pause</button></form>
<p class="muted" id="feed-status" role="status" aria-live="polite">Connecting…</p>
<div class="scroll"><table id="feed" data-stream="activity/stream${query ? `?${query}` : ''}">
<caption class="muted">Newest first; a row changes as its call moves on.</caption>
<thead><tr><th scope="col">Time</th><th scope="col">Session</th><th scope="col">Principal</th><th scope="col">Tool</th><th scope="col">Decision</th><th scope="col">Approval</th><th scope="col">Duration</th><th scope="col">Outcome</th></tr></thead>
<tbody></tbody></table></div>`,
    };
  },
  routes: registerStream,
};

/** The feed's filters that were filled in: the form sends the empty ones too, which mean "any". */
function filledIn(query: unknown): Record<string, unknown> {
  const q = query as Record<string, unknown>;
  return Object.fromEntries(FILTERS.filter((name) => q[name] !== undefined && q[name] !== '').map((name) => [name, q[name]]));
}

function textFilter(name: string, label: string, value: string | undefined): SafeHtml {
  return html`<div><label for="f-${name}">${label}</label><input id="f-${name}" name="${name}" value="${value ?? ''}" autocomplete="off"></div>`;
}

function choice(name: string, label: string, options: readonly string[], value: string | undefined): SafeHtml {
  return html`<div><label for="f-${name}">${label}</label><select id="f-${name}" name="${name}"><option value="">any</option>${options.map(
    (o) => html`<option${o === value ? html` selected` : ''}>${o}</option>`,
  )}</select></div>`;
}

/** GET /activity/stream: the backlog, then the calls as their records arrive, as `calls` events. */
function registerStream(app: FastifyInstance, { ctx, services }: ConsoleTools): void {
  app.get('/activity/stream', { config: { approver: APPROVER_PAGE } }, async (request, reply) => {
    const user = ctx.access.cookie(request.headers.cookie).approver;
    if (!user || !hasRole(user.role, 'viewer')) return reply.code(401).send({ error: { code: 'GH_ERR_UNAUTHORIZED', message: 'Sign in to the console first' } });
    let filter: AuditFilter;
    try {
      filter = filterOf(filledIn(request.query));
    } catch (err) {
      const error = asGatewayError(err);
      return reply.code(statusOf(error)).send({ error: { code: error.code, message: error.message } });
    }
    const { activity, audit } = services;
    if (!activity || !audit) return reply.code(501).send({ error: { code: 'GH_ERR_NOT_IMPLEMENTED', message: 'this gateway has no audit store to follow' } });

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    // The latest state of each call since the last flush: a call that moved twice is sent once.
    let held = new Map<string, AuditCall>();
    let ready = false;
    const send = (event: string, calls: AuditCall[]) => res.write(`event: ${event}\ndata: ${JSON.stringify(calls)}\n\n`);
    // Subscribed before the backlog is read, so nothing falls between the two (a call in both is one row).
    const unsubscribe = activity.subscribe(user.tenant, filter, (calls) => {
      for (const call of calls) {
        held.delete(call.jobId);
        held.set(call.jobId, call);
      }
      while (held.size > MAX_HELD) held.delete(held.keys().next().value!); // skipped, never waited for
    });
    const flush = setInterval(() => {
      if (!ready || held.size === 0) return;
      if (res.writableLength > MAX_UNSENT_BYTES) return end(); // too slow: dropped, never waited for
      const calls = [...held.values()];
      held = new Map();
      send('calls', calls);
    }, FLUSH_MS);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), KEEPALIVE_MS);
    const end = () => {
      clearInterval(flush);
      clearInterval(keepAlive);
      unsubscribe();
      res.end();
    };
    request.raw.on('close', end);
    try {
      const { calls } = await audit.calls(user.tenant, filter, { limit: BACKLOG });
      send('calls', calls.reverse());
    } catch (err) {
      ctx.log.warn('the live feed could not read its backlog', { error: (err as Error).message });
    }
    ready = true;
  });
}
