import type { FastifyReply, FastifyRequest } from 'fastify';
import { hasRole, type Approver, type ConsoleRole } from '../access.ts';
import type { ApproverContext } from '../context.ts';
import { html } from '../html.ts';
import { sendPage } from '../login.ts';
import { layout, type SignedIn } from './layout.ts';

export interface PagePlace {
  /** The relative way from the page to the console's root. */
  root: string;
  /** The login form to send a browser without a session to, relative to the page (with its `next`). */
  login: string;
}

/**
 * The user behind a page request, or undefined once the reply says why not. A browser without a session goes to
 * the login form. One arriving from another site (a link in chat) first gets a reload of the same URL: a
 * SameSite=Strict cookie is not sent on a cross-site navigation, but is on the page's own reload. A user whose
 * role does not reach the page gets a 403 page saying which role it takes.
 */
export function admitPage(ctx: ApproverContext, request: FastifyRequest, reply: FastifyReply, place: PagePlace, needed: ConsoleRole = 'viewer'): Approver | undefined {
  const admission = ctx.access.cookie(request.headers.cookie);
  const user = admission.approver;
  if (user && hasRole(user.role, needed)) return user;
  if (user) {
    void sendPage(reply, 403, messagePage('Not allowed', `This page takes the ${needed} role; you are signed in as ${user.role}. (GH_ERR_FORBIDDEN)`, place.root, signedInAs(ctx, user)));
  } else if (admission.refused.status === 403) {
    void sendPage(reply, 403, messagePage('The console is off', admission.refused.message, place.root));
  } else if (request.method === 'GET' && request.headers['sec-fetch-site'] === 'cross-site') {
    void sendPage(reply, 200, layout({ title: 'Opening…', root: place.root, reload: true, body: html`<p class="muted">Opening…</p>` }));
  } else {
    void reply.code(303).header('location', place.login).send();
  }
  return undefined;
}

/** Who is signed in, for a page's header: with the logout form's token when there is a session to end. */
export function signedInAs(ctx: ApproverContext, user: Approver): SignedIn {
  return { principal: user.principal, tenant: user.tenant, role: user.role, logoutToken: ctx.access.mode === 'keys' ? ctx.csrf.mint(user.session, 'logout') : undefined };
}

export function messagePage(title: string, message: string, root: string, me?: SignedIn): string {
  return layout({ title, root, body: html`<h1>${title}</h1><p class="error" role="alert">${message}</p>`, ...(me ? { me } : {}) });
}
