import type { LinkView } from '../approvals/action-links.ts';
import type { LinkAction } from '../approvals/action-tokens.ts';
import { argsSummaryOf } from '../approvals/preview.ts';
import { html } from './html.ts';
import { layout } from './console/layout.ts';
import { relative, ROOT_OF } from './views.ts';

/**
 * The pages of an approval's action link (`/approvals/<id>/link`), in the approval pages' frame, no script. The
 * GET page only asks: link previewers and mail scanners fetch URLs, so acting takes the form's POST.
 */

const VERB: Record<LinkAction, string> = { approve: 'Approve', deny: 'Deny' };
const ROOT = ROOT_OF.file;

/** The question: the call's summary, the reason, and one button that posts the token. */
export function linkAskPage(view: LinkView, token: string, now: number): string {
  const { record, action, actAs } = view;
  const verb = VERB[action];
  return page(
    `${verb} ${record.tool}?`,
    html`<h1>${verb} ${record.tool}? <span class="state ${record.state}">${record.state}</span></h1>
<section class="card"><dl>
<dt>Asked by</dt><dd>${record.principal}</dd>
<dt>Tenant</dt><dd>${record.tenant}</dd>
<dt>Server</dt><dd>${record.server}</dd>
<dt>Reason</dt><dd>${record.reason}</dd>
<dt>Arguments</dt><dd class="args">${argsSummaryOf(record) || '(none)'}</dd>
<dt>Expires</dt><dd>${relative(record.expiresAt, now)}</dd>
</dl></section>
<form class="card" method="post" action="link"><input type="hidden" name="token" value="${token}">
<p class="note">This link works once. It acts as ${actAs}, whom the approval's rules must allow.</p>
<div class="actions"><button class="${action}" name="decision" value="${action}">${verb}</button></div></form>
<p><a href="../${record.id}">Open the approval</a> (sign-in needed)</p>`,
  );
}

/** What the link did. */
export function linkDonePage(view: LinkView): string {
  const { record, action, actAs } = view;
  const votes = record.state === 'pending' ? html`<p>${actAs}'s vote is counted: ${record.votes.length} of ${record.quorum}. It waits for more approvers.</p>` : undefined;
  return page(
    `${record.tool} · ${record.state}`,
    html`<h1>${action === 'approve' ? 'Approved' : 'Denied'}: ${record.tool} <span class="state ${record.state}" id="state">${record.state}</span></h1>
${votes}<p>As ${actAs}, by link. <a href="../${record.id}">Open the approval</a> (sign-in needed)</p>`,
  );
}

/** A refusal: what is wrong with the link, and its code. */
export function linkRefusedPage(title: string, message: string): string {
  return page(title, html`<h1>${title}</h1><p class="error" role="alert">${message}</p>`);
}

function page(title: string, body: ReturnType<typeof html>): string {
  return layout({ title, section: 'approvals', root: ROOT, body });
}
