import type { ApproverContext } from '../context.ts';
import type { Approver } from '../access.ts';
import { APPROVER_API } from '../context.ts';
import { html } from '../html.ts';
import { serveConsoleJson } from './console-json.ts';
import { callCharts, type CallCharts } from './overview-data.ts';
import type { ConsolePage, ConsoleServices } from './page.ts';

/**
 * The Overview page: charts of the last hour's calls per minute by decision and of their p50/p95 time split into
 * Gatehouse's own and the upstream's, the approvals pending and how long they wait, and the audit chain's status.
 * The page is a frame; overview.js draws the charts (SVG) from `GET /api/overview` and refreshes them.
 */
export const overviewPage: ConsolePage = {
  path: '/',
  section: 'overview',
  role: 'viewer',
  async render() {
    const body = html`<h1>Overview</h1>
<p class="muted" id="overview-status" aria-live="polite">Loading…</p>
<div class="charts">
<section class="card" aria-labelledby="calls-h"><h2 id="calls-h">Calls per minute, by decision</h2><div class="chart" id="calls-chart" role="img" aria-label="Calls per minute over the last hour, stacked by decision"></div></section>
<section class="card" aria-labelledby="duration-h"><h2 id="duration-h">Duration p50 / p95 (ms)</h2><div class="chart" id="duration-chart" role="img" aria-label="p50 and p95 call duration per minute, Gatehouse's own time and the upstream's"></div></section>
<section class="card" aria-labelledby="approvals-h"><h2 id="approvals-h">Approvals pending</h2><div id="approvals"></div><div class="chart" id="approvals-chart" role="img" aria-label="How long each pending approval has waited"></div></section>
<section class="card" aria-labelledby="chain-h"><h2 id="chain-h">Audit chain</h2><div id="chain"></div></section>
</div>`;
    return { title: 'Overview', body, wide: true, scripts: ['overview.js'] };
  },
  routes(app, tools) {
    app.get('/api/overview', { config: { approver: APPROVER_API } }, (request, reply) => serveConsoleJson(tools.ctx, request, reply, (reader) => overviewOf(tools.ctx, tools.services, reader)));
  },
};

export interface Overview {
  now: number;
  calls: CallCharts | null;
  approvals: { pending: number; waitsMs: number[] };
  chain: ChainView | null;
}

export interface ChainView {
  ok: boolean;
  code?: string;
  /** Records that verify, from the first. */
  records: number;
  head?: { seq: number; hash: string };
  brokenAt?: { seq?: number; reason: string };
  checkpoints: { count: number; checked: boolean; last?: { seq: number; at: number }; uncovered: number };
  verifiedAt: number;
}

/** What the Overview's charts draw, for the reader's tenant; every part bounded (see callCharts, ChainStatus). */
async function overviewOf(ctx: ApproverContext, services: ConsoleServices, reader: Approver): Promise<Overview> {
  const now = ctx.now();
  const records = services.console?.records;
  const pending = await ctx.actions.list(reader, 'pending');
  const verification = services.console?.chain?.of(reader.tenant);
  const report = verification?.report;
  return {
    now,
    calls: records ? await callCharts(records, reader.tenant, now) : null,
    approvals: { pending: pending.length, waitsMs: pending.map((a) => Math.max(0, now - a.createdAt)).sort((a, b) => b - a) },
    chain: report
      ? {
          ok: report.ok,
          ...(report.code ? { code: report.code } : {}),
          records: report.records,
          ...(report.head ? { head: report.head } : {}),
          ...(report.brokenAt ? { brokenAt: report.brokenAt } : {}),
          checkpoints: {
            count: report.checkpoints.count,
            checked: report.checkpoints.checked,
            ...(report.checkpoints.last ? { last: { seq: report.checkpoints.last.seq, at: report.checkpoints.last.at } } : {}),
            uncovered: report.checkpoints.uncovered,
          },
          verifiedAt: verification.verifiedAt,
        }
      : null,
  };
}
