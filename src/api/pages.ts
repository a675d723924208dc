import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApprovalRecord } from '../protocol/approval-record.ts';
import { asGatewayError, GatewayError } from '../errors.ts';
import type { Approver } from './access.ts';
import { statusOf } from './actions.ts';
import { decideExtra } from './approval-extras.ts';
import { APPROVER_PAGE, type ApproverContext } from './context.ts';
import { fromThisServer } from './csrf.ts';
import { formOf, registerLogin, sendPage as page } from './login.ts';
import { childLink, detailPage, listPage, messagePage, ROOT_OF, type PageDepth, type SignedIn } from './views.ts';
import { admitPage, signedInAs } from './console/admit.ts';

const ID = /^[0-9A-Za-z_-]{1,64}$/;

/**
 * The approval pages: the pending list at /approvals, one approval at /approvals/:id with approve and deny
 * buttons (for the approver role) and its redacted arguments (also as a download, /approvals/:id/arguments.json),
 * and the login (login.ts) that approval links lead to. Form posts need a CSRF token bound to the session and the
 * approval, and an Origin (when the browser sends one) that is this server.
 */
export function registerApprovalPages(app: FastifyInstance, ctx: ApproverContext): void {
  const route = { config: { approver: APPROVER_PAGE } };

  app.get('/approvals', route, async (request, reply) => {
    const approver = admit(request, reply, 'list', '');
    if (!approver) return reply;
    const showing = (request.query as Record<string, unknown>).state === 'all' ? 'all' : 'pending';
    const records = await ctx.actions.list(approver, showing);
    return page(reply, 200, listPage(records, { me: signedIn(approver), now: ctx.now(), showing }));
  });

  // `/approvals/` is the list too. Redirected rather than served: the list's relative links assume no slash. The
  // redirect is relative as well, so a proxy's path prefix is kept.
  app.get('/approvals/', route, async (request, reply) => {
    const query = request.url.indexOf('?');
    return reply.code(308).header('location', `../approvals${query === -1 ? '' : request.url.slice(query)}`).send();
  });

  registerLogin(app, ctx, { base: '/approvals', nextOf, home: '../approvals', root: '../' });

  app.get(
    '/approvals/:id',
    route,
    serveApproval('below', (reply, record, approver) =>
      page(reply, 200, detailPage(record, { me: signedIn(approver), now: ctx.now(), csrfToken: ctx.csrf.mint(approver.session, `decide:${record.id}`) })),
    ),
  );

  // The same redacted arguments the page shows, whole, for approvers of the approval's tenant (a session, like the
  // page): to read them in an editor or compare two calls.
  app.get(
    '/approvals/:id/arguments.json',
    route,
    serveApproval('file', (reply, record) => {
      if (!record.redactedArgs) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `approval ${record.id} keeps only a preview of its arguments; its page shows it`);
      return reply
        .code(200)
        .type('application/json; charset=utf-8')
        .header('content-disposition', `attachment; filename="${record.id}-arguments.json"`)
        .send(JSON.stringify(record.redactedArgs, null, 2));
    }),
  );

  app.post('/approvals/:id', route, async (request, reply) => {
    const id = idOf(request);
    const approver = admit(request, reply, 'below', id);
    if (!approver) return reply;
    const form = formOf(request);
    const me = signedIn(approver);
    if (!fromThisServer(request.headers, ctx.publicOrigin) || !ctx.csrf.verify(form.csrf, approver.session, `decide:${id}`)) {
      return failure(reply, new GatewayError('GH_ERR_CSRF', 'This form did not come from this page, or it has expired. Reload the page and try again.'), me);
    }
    try {
      if (!(await decideExtra(ctx.actions, approver, id, form))) {
        if (form.decision !== 'approve' && form.decision !== 'deny') throw new GatewayError('GH_ERR_INVALID_REQUEST', 'Choose approve or deny.');
        await ctx.actions.decide(approver, id, form.decision, form.reason);
      }
      return reply.code(303).header('location', encodeURIComponent(id)).send(); // the page then shows the new state
    } catch (err) {
      const error = asGatewayError(err);
      const record = await ctx.actions.get(approver, id).catch(() => undefined);
      if (!record) return failure(reply, error, me);
      const csrfToken = ctx.csrf.mint(approver.session, `decide:${id}`);
      return page(reply, statusOf(error), detailPage(record, { me, now: ctx.now(), csrfToken, error: `${error.message} (${error.code})` }));
    }
  });

  /** A GET of one approval (its page, its arguments): the approver admitted, the approval found in their tenant. */
  function serveApproval(depth: PageDepth, answer: (reply: FastifyReply, record: ApprovalRecord, approver: Approver) => FastifyReply) {
    return async (request: FastifyRequest, reply: FastifyReply) => {
      const id = idOf(request);
      const approver = admit(request, reply, depth, id);
      if (!approver) return reply;
      try {
        return answer(reply, await ctx.actions.get(approver, id), approver);
      } catch (err) {
        return failure(reply, err, signedIn(approver), depth);
      }
    };
  }

  /** The approver (any console role) behind a page request, or undefined once the reply says why not (admit.ts). */
  function admit(request: FastifyRequest, reply: FastifyReply, depth: PageDepth, id: string): Approver | undefined {
    const login = childLink(depth, 'login');
    return admitPage(ctx, request, reply, { root: ROOT_OF[depth], login: id && ID.test(id) ? `${login}?next=${encodeURIComponent(id)}` : login });
  }

  function signedIn(approver: Approver): SignedIn {
    return signedInAs(ctx, approver);
  }

  function failure(reply: FastifyReply, err: unknown, me: SignedIn, depth: PageDepth = 'below'): FastifyReply {
    const error = asGatewayError(err);
    const status = statusOf(error);
    if (status === 500) ctx.log.error('approval page failed', { code: error.code, error: error.message });
    const title = status === 404 ? 'No such approval' : status === 403 ? 'Not allowed' : 'Something went wrong';
    return page(reply, status, messagePage(title, status === 500 ? 'Internal error.' : `${error.message} (${error.code})`, depth, me));
  }
}

/** Where to go after login: an approval id or nothing (the list), never a URL, so it cannot redirect off site. */
function nextOf(value: unknown): string {
  return typeof value === 'string' && ID.test(value) && value !== 'login' && value !== 'logout' ? value : '';
}

function idOf(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}
