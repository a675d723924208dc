import type { FastifyInstance } from 'fastify';
import { kindsOf, type PinChange } from '../../call/pin-desk.ts';
import { jsonWithoutHidden } from '../../call/hidden-unicode.ts';
import { asGatewayError } from '../../errors.ts';
import { hasRole } from '../access.ts';
import { statusOf } from '../actions.ts';
import { html, type SafeHtml } from '../html.ts';
import { formOf } from '../login.ts';
import { decidePin } from '../tools-api.ts';
import { messagePage, signedInAs } from './admit.ts';
import { rootOf } from './layout.ts';
import type { ConsoleTools, PageView } from './page.ts';

const POST_PATH = '/upstreams/pins';
const PURPOSE = 'tool-pin';

/**
 * The Upstreams page's changed tool definitions: every tool whose definition is not its pin (quarantined, held for
 * approval or rejected), with the pinned and current value of each field that differs, and for admins the Accept
 * and Reject buttons (a form post with this session's CSRF token, as `POST /api/tools/pins/:tool/accept|reject`).
 */
export async function pinnedToolsSection(view: PageView): Promise<SafeHtml | undefined> {
  const pins = view.services.pins;
  if (!pins) return undefined;
  const changed = await Promise.all((await pins.list()).filter((p) => p.state !== 'pinned').map((p) => pins.change(p.tool)));
  const admin = hasRole(view.user.role, 'admin');
  return html`<section class="card" id="pins" aria-labelledby="pins-title"><h2 id="pins-title">Changed tool definitions</h2>
${
  changed.length === 0
    ? html`<p class="muted">Every tool is served at its pinned definition.</p>`
    : html`${!admin && html`<p class="note">Accepting or rejecting a definition takes the admin role; you are signed in as ${view.user.role}.</p>`}${changed.map((c) => changeCard(view, c, admin))}`
}</section>`;
}

function changeCard(view: PageView, change: PinChange, admin: boolean): SafeHtml {
  return html`<article class="pin" data-pin="${change.tool}"><h3 class="mono">${change.tool} <span class="state ${change.state === 'rejected' ? 'deny' : 'require_approval'}">${change.state}</span></h3>
<p class="muted">pinned ${change.digest} by ${change.pinnedBy}${change.changedDigest && html`; seen since ${change.changedDigest} at ${change.changedAt ?? ''}`}</p>
${
  !change.current
    ? html`<p>The poisoning scan flagged the pinned definition: ${kindsOf(change.findings ?? []).join('; ')}</p><pre>${jsonWithoutHidden(change.pinned, 2)}</pre>`
    : change.pinnedDigestOnly
      ? html`<p>${change.pinnedBy} pinned only a digest: there is no definition to compare with. The upstream gives:</p><pre>${jsonWithoutHidden(change.current, 2)}</pre>`
      : change.fields.map((field) => html`<h4 class="mono">${field}</h4><p class="muted">pinned</p><pre class="pinned">${shown(change.pinned[field])}</pre><p class="muted">now</p><pre class="current">${shown(change.current?.[field])}</pre>`)
}
${change.changedFindings && html`<p class="note">The poisoning scan flagged the new definition: ${kindsOf(change.changedFindings).join('; ')}</p>`}
${
  admin &&
  html`<form method="post" action="${view.root}upstreams/pins"><input type="hidden" name="csrf" value="${view.csrf(PURPOSE)}"><input type="hidden" name="tool" value="${change.tool}"><input type="hidden" name="digest" value="${change.changedDigest ?? change.digest}">
<div class="actions"><button type="submit" name="decision" value="accept" class="approve">Accept the new definition</button>${change.state !== 'rejected' && html`<button type="submit" name="decision" value="reject" class="deny">Reject</button>`}</div></form>`
}</article>`;
}

/** A field's value as JSON with hidden characters spelled out (the scan's escaping), or that it is absent. */
const shown = (value: unknown): string => (value === undefined ? '(absent)' : jsonWithoutHidden(value, 2));

/** The Accept and Reject buttons' post: an admin, this session's token, then back to the page (or why not). */
export function registerPinDecisions(app: FastifyInstance, tools: ConsoleTools): void {
  const root = rootOf(POST_PATH);
  app.post(POST_PATH, { config: { approver: 'page' } }, async (request, reply) => {
    const user = tools.admit(request, reply, 'admin', root);
    if (!user) return reply;
    const me = signedInAs(tools.ctx, user);
    if (!tools.checkForm(request, user, PURPOSE)) {
      return reply.code(403).type('text/html; charset=utf-8').send(messagePage('Not allowed', 'This form has expired or did not come from this page; reload the page and try again. (GH_ERR_CSRF)', root, me));
    }
    const form = formOf(request);
    const decision = form.decision === 'accept' || form.decision === 'reject' ? form.decision : undefined;
    const pins = tools.services.pins;
    if (!decision || typeof form.tool !== 'string' || !pins) {
      return reply.code(400).type('text/html; charset=utf-8').send(messagePage('Not decided', 'The form names no tool or no decision (accept or reject). (GH_ERR_INVALID_REQUEST)', root, me));
    }
    try {
      await decidePin(pins, user, form.tool, decision, typeof form.digest === 'string' ? form.digest : undefined);
    } catch (err) {
      const error = asGatewayError(err);
      const status = statusOf(error);
      return reply.code(status === 500 ? 500 : status).type('text/html; charset=utf-8').send(messagePage('Not decided', `${status === 500 ? 'internal error' : error.message} (${error.code})`, root, me));
    }
    return reply.redirect(`${root}upstreams#pins`, 303);
  });
}
