import type { FastifyInstance, FastifyRequest } from 'fastify';
import { asGatewayError } from '../../errors.ts';
import { statusOf } from '../actions.ts';
import { APPROVER_PAGE, type ApproverContext } from '../context.ts';
import { fromThisServer } from '../csrf.ts';
import { formOf, registerLogin, sendPage } from '../login.ts';
import { admitPage, messagePage, signedInAs } from './admit.ts';
import { registerAssets } from './assets.ts';
import { layout, rootOf } from './layout.ts';
import type { ConsolePage, ConsoleServices, ConsoleTools } from './page.ts';
import { CONSOLE_PAGES } from './registry.ts';

/** A console path a login may go on to: a page (`activity`) or one item below one (`calls/<id>`), never a URL. */
const NEXT = /^[a-z]+(?:\/[0-9A-Za-z_-]{1,64})?$/;

/**
 * The console at / on the listener that serves /mcp: its assets, its login and logout, and every page of
 * registry.ts behind the same admission as the approval pages (a session cookie of a key with a console role, or
 * the local user on loopback without keys), each page's role checked.
 */
export function registerConsole(app: FastifyInstance, ctx: ApproverContext, services: ConsoleServices, pages: readonly ConsolePage[] = CONSOLE_PAGES): void {
  registerAssets(app);
  registerLogin(app, ctx, { base: '', nextOf: (value) => (typeof value === 'string' && NEXT.test(value) && value !== 'login' && value !== 'logout' ? value : ''), home: './', root: './' });

  const tools: ConsoleTools = {
    ctx,
    services,
    admit: (request, reply, role, root) => admitPage(ctx, request, reply, { root, login: loginFrom(request, root) }, role),
    checkForm: (request, user, purpose) => fromThisServer(request.headers, ctx.publicOrigin) && ctx.csrf.verify(formOf(request).csrf, user.session, purpose),
    send: (reply, view, answer) => sendPage(reply, answer.status ?? 200, layout({ ...answer, ...(view.section ? { section: view.section } : {}), me: view.me, root: view.root })),
  };

  for (const page of pages) {
    const root = rootOf(page.path);
    app.get(page.path, { config: { approver: APPROVER_PAGE } }, async (request, reply) => {
      const user = tools.admit(request, reply, page.role, root);
      if (!user) return reply;
      const me = signedInAs(ctx, user);
      try {
        const answer = await page.render({ request, user, me, root, services, now: ctx.now(), csrf: (purpose) => ctx.csrf.mint(user.session, purpose) });
        return sendPage(reply, answer.status ?? 200, layout({ ...answer, section: page.section, me, root }));
      } catch (err) {
        const error = asGatewayError(err);
        const status = statusOf(error);
        if (status === 500) ctx.log.error('console page failed', { page: page.path, code: error.code, error: error.message });
        return sendPage(reply, status, messagePage(status === 404 ? 'Not found' : 'Something went wrong', status === 500 ? 'Internal error.' : `${error.message} (${error.code})`, root, me));
      }
    });
    page.routes?.(app, tools);
  }
}

/** The login form's URL from a page, with the page as `next` so the login returns there. */
function loginFrom(request: FastifyRequest, root: string): string {
  const path = request.url.split('?')[0].replace(/^\/+/, '');
  return NEXT.test(path) ? `${root}login?next=${encodeURIComponent(path)}` : `${root}login`;
}
