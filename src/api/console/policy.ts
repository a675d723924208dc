import type { FastifyReply, FastifyRequest } from 'fastify';
import { asGatewayError, GatewayError } from '../../errors.ts';
import { formatExplanation, type ExplainedCall } from '../../kernel/authoring/explain-format.ts';
import { replayDecisions, type ReplayReport } from '../../kernel/authoring/replay.ts';
import { hasRole } from '../access.ts';
import { html, type SafeHtml } from '../html.ts';
import { formOf } from '../login.ts';
import { explainStated } from '../policy-api.ts';
import { messagePage, signedInAs } from './admit.ts';
import { rootOf } from './layout.ts';
import { draftKernel, MAX_DRAFT_BYTES } from './draft.ts';
import type { ConsolePage, ConsoleTools, PageAnswer, PageView } from './page.ts';
import { replayView } from './policy-replay-view.ts';
import { CLOCK_SLACK_MS, countRuleHits, HIT_WINDOWS, MAX_SCANNED, type HitWindow, type RuleHits } from './rule-hits.ts';

const PATH = '/policy';
/** The form posts answer at /policy/explain and /policy/replay, one level down. */
const POSTED_ROOT = rootOf(`${PATH}/explain`);

/** What a form post adds to the page: its answer, or why there is none, and the fields to keep. */
interface Posted {
  explained?: ExplainedCall;
  explainError?: string;
  replay?: ReplayReport;
  replayError?: string;
  /** The answer's status when the form's input was refused: 400, or 413 for a draft over the limit. */
  status?: number;
  fields?: Record<string, string>;
}

/**
 * The Policy page: the bundle in force and its snapshot, each rule's hits over a window (1h, 24h, 7d) from the
 * audit trail's `job.decided` records and the rules that never fired, a form that explains a typed call (as
 * `POST /api/policy/explain` does), and for admins a replay of a draft bundle over the recorded decisions (as
 * `gatehouse policy replay` does), listing what would change.
 */
export const policyPage: ConsolePage = {
  path: PATH,
  section: 'policy',
  role: 'viewer',
  render: (view) => policyAnswer(view, {}),
  routes(app, tools) {
    app.post(`${PATH}/explain`, { config: { approver: 'page' } }, (request, reply) =>
      posted(tools, request, reply, 'viewer', 'policy-explain', async (view, fields) => {
        try {
          return { explained: explainStated(view.user, explainBody(fields), tools.services.kernel, (call) => tools.services.toolFacts?.(call), view.now) };
        } catch (err) {
          return refused(tools, err, 'explainError');
        }
      }),
    );
    app.post(`${PATH}/replay`, { config: { approver: 'page' } }, (request, reply) =>
      posted(tools, request, reply, 'admin', 'policy-replay', async (view, fields) => {
        try {
          const draft = draftKernel(fields.draft ?? '');
          const records = tools.services.console?.records;
          if (!records) return { replayError: 'This gateway has no audit trail to replay; use `gatehouse policy replay`.' };
          const since = view.now - HIT_WINDOWS[windowOf(fields.window)];
          return { replay: await replayDecisions(recordedSince(records, view.user.tenant, since), draft, { since }) };
        } catch (err) {
          return refused(tools, err, 'replayError');
        }
      }),
    );
  },
};

/** A form post of the page: admitted with `role`, its CSRF token checked, answered with the page and the result. */
async function posted(tools: ConsoleTools, request: FastifyRequest, reply: FastifyReply, role: 'viewer' | 'admin', purpose: string, act: (view: PageView, fields: Record<string, string>) => Promise<Posted>) {
  const user = tools.admit(request, reply, role, POSTED_ROOT);
  if (!user) return reply;
  const me = signedInAs(tools.ctx, user);
  if (!tools.checkForm(request, user, purpose)) {
    return reply.code(403).type('text/html; charset=utf-8').send(messagePage('Not allowed', 'This form has expired or did not come from this page; reload the page and try again. (GH_ERR_CSRF)', POSTED_ROOT, me));
  }
  const view: PageView = { request, user, me, root: POSTED_ROOT, services: tools.services, now: tools.ctx.now(), csrf: (p) => tools.ctx.csrf.mint(user.session, p) };
  const fields = textFields(formOf(request));
  const result = await act(view, fields);
  const answer = await policyAnswer(view, { ...result, fields });
  return tools.send(reply, { me, root: POSTED_ROOT, section: 'policy' }, { ...answer, status: result.status ?? 200 });
}

async function policyAnswer(view: PageView, posted: Posted): Promise<PageAnswer> {
  const { bundle } = view.services.kernel;
  const window = windowOf(posted.fields?.window ?? query(view.request, 'window'));
  const records = view.services.console?.records;
  const hits = records ? await countRuleHits(records, view.user.tenant, view.now - HIT_WINDOWS[window]) : undefined;
  const body = html`<h1>Policy</h1>
<section class="card" aria-labelledby="bundle-h"><h2 id="bundle-h">Bundle in force</h2><dl>
<dt>Snapshot</dt><dd class="mono" id="snapshot">${bundle.snapshot}</dd>
<dt>Files</dt><dd>${bundle.files.join(', ') || '(none)'}</dd>
<dt>Default</dt><dd><span class="state ${bundle.default}">${bundle.default}</span></dd>
<dt>Rules</dt><dd>${bundle.rules.length}</dd></dl></section>
${rulesSection(view.root, bundle.rules, window, hits)}
${explainSection(view, posted)}
${replaySection(view, posted, window)}`;
  return { title: 'Policy', body, wide: true, scripts: ['policy.js'] };
}

function rulesSection(root: string, rules: readonly { id: string; effect: string; description?: string }[], window: HitWindow, hits: RuleHits | undefined): SafeHtml {
  const never = hits ? rules.filter((r) => !hits.hits.has(r.id)) : [];
  return html`<section class="card" aria-labelledby="rules-h"><h2 id="rules-h">Rules and their hits</h2>
<form class="filters" method="get" action="${root}policy"><label for="window">Window<select id="window" name="window">${Object.keys(HIT_WINDOWS).map(
    (w) => html`<option value="${w}"${w === window ? html` selected` : ''}>last ${w}</option>`,
  )}</select></label><button>Count</button></form>
${
  hits
    ? html`<p class="muted" id="decisions">${hits.decisions} decisions in the last ${window}${hits.byDefault > 0 ? `, ${hits.byDefault} by the default (no rule matched)` : ''}.${
        hits.complete ? '' : ` The count stopped after the newest ${MAX_SCANNED} records, at ${hits.oldest === undefined ? 'the window start' : new Date(hits.oldest).toISOString()}.`
      }</p>`
    : html`<p class="note">This gateway has no audit trail to count hits from.</p>`
}
<div class="scroll"><table id="rules"><thead><tr><th scope="col">Rule</th><th scope="col">Effect</th><th scope="col">Hits</th><th scope="col">Description</th></tr></thead><tbody>
${rules.map((r) => html`<tr data-rule="${r.id}"><td class="mono">${r.id}</td><td><span class="state ${r.effect}">${r.effect}</span></td><td class="hits">${hits ? String(hits.hits.get(r.id) ?? 0) : '–'}</td><td>${r.description ?? ''}</td></tr>`)}
</tbody></table></div>
${hits && html`<h3>Never fired in the last ${window}</h3>${never.length === 0 ? html`<p class="muted">Every rule fired.</p>` : html`<ul id="never">${never.map((r) => html`<li class="mono">${r.id}</li>`)}</ul>`}`}
</section>`;
}

function explainSection(view: PageView, posted: Posted): SafeHtml {
  const f = posted.fields ?? {};
  return html`<section class="card" aria-labelledby="explain-h"><h2 id="explain-h">Explain a call</h2>
<p class="muted">Decided as the live gateway would, on the catalog's tool facts, in tenant ${view.user.tenant}.</p>
<form method="post" action="${view.root}policy/explain"><input type="hidden" name="csrf" value="${view.csrf('policy-explain')}">
<label for="server">Server</label><input class="field" id="server" name="server" required value="${f.server ?? ''}" autocomplete="off">
<label for="tool">Tool</label><input class="field" id="tool" name="tool" required value="${f.tool ?? ''}" autocomplete="off" placeholder="its own name, or server__tool">
<label for="principal">Principal</label><input class="field" id="principal" name="principal" value="${f.principal ?? view.user.principal}" autocomplete="off">
<label for="args">Arguments (JSON)</label><textarea id="args" name="args" spellcheck="false">${f.args ?? '{}'}</textarea>
<div class="actions"><button id="explain">Explain</button></div></form>
${posted.explainError && html`<p class="error" role="alert" id="explain-error">${posted.explainError}</p>`}
${posted.explained && html`<h3>Verdict: <span class="state ${posted.explained.verdict.effect}" id="verdict">${posted.explained.verdict.effect}</span></h3><pre id="explained">${formatExplanation(posted.explained)}</pre>`}
</section>`;
}

function replaySection(view: PageView, posted: Posted, window: HitWindow): SafeHtml {
  if (!hasRole(view.user.role, 'admin')) {
    return html`<section class="card"><h2>Replay a draft</h2><p class="note">Replaying a draft bundle takes the admin role; you are signed in as ${view.user.role}.</p></section>`;
  }
  return html`<section class="card" aria-labelledby="replay-h"><h2 id="replay-h">Replay a draft</h2>
<p class="muted">Re-decides this tenant's recorded decisions of the window under a draft policy file, as <code>gatehouse policy replay</code> does, and lists what would change. Nothing is loaded.</p>
<form method="post" action="${view.root}policy/replay"><input type="hidden" name="csrf" value="${view.csrf('policy-replay')}">
<label for="draft-file">Upload a policy file</label><input id="draft-file" type="file" accept=".yaml,.yml,text/yaml" data-max-bytes="${MAX_DRAFT_BYTES}">
<label for="draft">or paste it (YAML, at most ${MAX_DRAFT_BYTES / 1024} KiB)</label><textarea id="draft" name="draft" spellcheck="false" required>${posted.fields?.draft ?? ''}</textarea>
<label for="replay-window">Recorded decisions of the</label><select id="replay-window" name="window">${Object.keys(HIT_WINDOWS).map(
    (w) => html`<option value="${w}"${w === window ? html` selected` : ''}>last ${w}</option>`,
  )}</select>
<div class="actions"><button id="replay">Replay</button></div></form>
${posted.replayError && html`<p class="error" role="alert" id="replay-error">${posted.replayError}</p>`}
${posted.replay && replayView(posted.replay)}
</section>`;
}

/** The recorded decisions of one tenant since `since`, newest first, read no further than MAX_SCANNED records. */
async function* recordedSince(records: NonNullable<NonNullable<PageView['services']['console']>['records']>, tenant: string, since: number) {
  let scanned = 0;
  for await (const record of records.readBack(tenant)) {
    if (record.at < since - CLOCK_SLACK_MS || ++scanned > MAX_SCANNED) return;
    yield record;
  }
}

/** The explain form's fields as the explain API's body: a tool given by its own name is namespaced with the server. */
function explainBody(fields: Record<string, string>): Record<string, unknown> {
  const server = (fields.server ?? '').trim();
  const tool = (fields.tool ?? '').trim();
  let args: unknown;
  try {
    args = JSON.parse(fields.args?.trim() || '{}');
  } catch (err) {
    throw new GatewayError('GH_ERR_INVALID_REQUEST', `arguments: not JSON (${(err as Error).message})`);
  }
  return {
    tool: tool.includes('__') || !server ? tool : `${server}__${tool}`,
    ...(fields.principal?.trim() ? { principal: fields.principal.trim() } : {}),
    args,
  };
}

/** What the page says of a form it could not answer: the mistake in what was typed, or only that something failed. */
function refused(tools: ConsoleTools, err: unknown, field: 'explainError' | 'replayError'): Posted {
  const error = asGatewayError(err);
  const status = INPUT_STATUS[error.code];
  if (status) return { [field]: `${error.message} (${error.code})`, status };
  tools.ctx.log.error('console policy form failed', { code: error.code, error: error.message });
  return { [field]: `Something went wrong (${error.code}); see the gateway's log.`, status: 500 };
}

/** The refusals that are about the form's input, and their status: a draft over the limit gets 413. */
const INPUT_STATUS: Partial<Record<string, number>> = { GH_ERR_INVALID_REQUEST: 400, GH_ERR_POLICY_INVALID: 400, GH_ERR_FORBIDDEN: 403, GH_ERR_BODY_TOO_LARGE: 413 };

function windowOf(value: unknown): HitWindow {
  return typeof value === 'string' && value in HIT_WINDOWS ? (value as HitWindow) : '24h';
}

function query(request: FastifyRequest, name: string): unknown {
  return (request.query as Record<string, unknown> | undefined)?.[name];
}

function textFields(form: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(form).filter((e): e is [string, string] => typeof e[1] === 'string'));
}
