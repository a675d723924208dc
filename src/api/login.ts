import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { APPROVER_PAGE, type ApproverContext } from './context.ts';
import { fromThisServer } from './csrf.ts';
import { html } from './html.ts';
import { readCookie } from './session-cookie.ts';
import { layout } from './console/layout.ts';

/** Holds the login form's CSRF nonce until the session cookie replaces it. */
const LOGIN_COOKIE = 'gatehouse_login';
const NONCE = /^[0-9A-Za-z_-]{1,64}$/;

export interface LoginPlace {
  /** Where the forms live: `/login` and `/logout` below it (`''` for the console, `/approvals`). */
  base: '' | '/approvals';
  /** The `next` a form may carry, as a location relative to the login page, or '' for none (never a URL). */
  nextOf(value: unknown): string;
  /** Where to go after login without a `next`, relative to the login page. */
  home: string;
  /** The relative way from the login page to the console's root. */
  root: string;
}

/**
 * The login that turns an API key with a console role into a session cookie, and the logout that ends it: at
 * /login for the console, and at /approvals/login where approval links lead. The form's CSRF token is bound to a
 * random nonce in a short-lived cookie (there is no session yet); a post from another origin is refused.
 */
export function registerLogin(app: FastifyInstance, ctx: ApproverContext, place: LoginPlace): void {
  const route = { config: { approver: APPROVER_PAGE } };

  app.get(`${place.base}/login`, route, async (request, reply) => {
    const next = place.nextOf((request.query as Record<string, unknown>).next);
    if (ctx.access.mode !== 'keys' || ctx.access.cookie(request.headers.cookie).approver) return reply.code(303).header('location', next || place.home).send();
    return sendPage(reply, 200, loginPage(place, { next, csrfToken: loginToken(request, reply) }));
  });

  app.post(`${place.base}/login`, route, async (request, reply) => {
    const form = formOf(request);
    const next = place.nextOf(form.next);
    const nonce = readCookie(request.headers.cookie, LOGIN_COOKIE);
    if (!fromThisServer(request.headers, ctx.publicOrigin) || !nonce || !ctx.csrf.verify(form.csrf, nonce, 'login')) {
      return sendPage(reply, 403, loginPage(place, { next, csrfToken: loginToken(request, reply), error: 'The form expired. Please sign in again. (GH_ERR_CSRF)' }));
    }
    const admission = ctx.access.login(typeof form.key === 'string' ? form.key.trim() : '');
    if (admission.refused) {
      return sendPage(reply, admission.refused.status, loginPage(place, { next, csrfToken: loginToken(request, reply), error: admission.refused.status === 401 ? 'That key is not valid.' : `${admission.refused.message} (${admission.refused.code})` }));
    }
    reply.header('set-cookie', [ctx.sessions.issue(admission.approver.principal, admission.approver.tenant), `${LOGIN_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`]);
    return reply.code(303).header('location', next || place.home).send();
  });

  app.post(`${place.base}/logout`, route, async (request, reply) => {
    const approver = ctx.access.cookie(request.headers.cookie).approver;
    if (approver && ctx.csrf.verify(formOf(request).csrf, approver.session, 'logout')) reply.header('set-cookie', ctx.sessions.clear());
    return reply.code(303).header('location', 'login').send();
  });

  function loginToken(request: FastifyRequest, reply: FastifyReply): string {
    let nonce = readCookie(request.headers.cookie, LOGIN_COOKIE);
    if (!nonce || !NONCE.test(nonce)) {
      nonce = randomBytes(18).toString('base64url');
      reply.header('set-cookie', `${LOGIN_COOKIE}=${nonce}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600`);
    }
    return ctx.csrf.mint(nonce, 'login');
  }
}

function loginPage(place: LoginPlace, options: { next: string; csrfToken: string; error?: string }): string {
  return layout({
    title: 'Sign in',
    root: place.root,
    body: html`<h1>Sign in</h1>${options.error && html`<p class="error" role="alert">${options.error}</p>`}
<form class="card" method="post" action="login"><input type="hidden" name="csrf" value="${options.csrfToken}"><input type="hidden" name="next" value="${options.next}">
<label for="key">API key</label><input id="key" name="key" type="password" autocomplete="current-password" required>
<div class="actions"><button>Sign in</button></div></form>
<p class="muted">Use an API key from auth.apiKeys with one of the roles viewer (to look), approver (also to decide approvals) or admin.</p>`,
  });
}

export function sendPage(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(body);
}

/** A form post's fields; the front parses application/x-www-form-urlencoded into a plain object. */
export function formOf(request: FastifyRequest): Record<string, unknown> {
  const body = request.body;
  return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
}
