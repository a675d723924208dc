import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ActionLinks } from '../approvals/action-links.ts';
import { asGatewayError, type GatewayError } from '../errors.ts';
import { approvalView, statusOf } from './actions.ts';
import { readBody } from './api.ts';
import { APPROVER_API, APPROVER_PAGE, type ApproverContext } from './context.ts';
import { formOf, sendPage } from './login.ts';
import { linkAskPage, linkDonePage, linkRefusedPage } from './link-views.ts';

/** A link's refusals where they differ from the approver's: a used link and an expired approval are gone (410). */
const LINK_STATUS: Record<string, number> = { GH_ERR_APPROVAL_LINK_INVALID: 403, GH_ERR_APPROVAL_LINK_USED: 410, GH_ERR_APPROVAL_EXPIRED: 410 };

const TITLE: Record<number, string> = { 403: 'This link cannot act', 404: 'No such approval', 409: 'Already decided', 410: 'This link is no longer valid' };

/**
 * An approval's action link, from a webhook notice: `GET /approvals/<id>/link?token=…` only shows the call and a
 * button (previewers and scanners fetch links, and must not decide anything); the button POSTs the token to the
 * same path, which acts. `POST /api/approvals/<id>/link {"token"}` does the same in JSON, for a bot. No sign-in:
 * the token is the credential, and it is never logged.
 */
export function registerLinkPages(app: FastifyInstance, ctx: ApproverContext, links: ActionLinks): void {
  app.get('/approvals/:id/link', { config: { approver: APPROVER_PAGE } }, async (request, reply) => {
    const token = (request.query as Record<string, unknown>).token;
    try {
      return sendPage(reply, 200, linkAskPage(await links.look(idOf(request), token), String(token), ctx.now()));
    } catch (err) {
      return refused(reply, err);
    }
  });

  app.post('/approvals/:id/link', { config: { approver: APPROVER_PAGE } }, async (request, reply) => {
    try {
      return sendPage(reply, 200, linkDonePage(await links.use(idOf(request), formOf(request).token)));
    } catch (err) {
      return refused(reply, err);
    }
  });

  app.post('/api/approvals/:id/link', { config: { approver: APPROVER_API } }, async (request, reply) => {
    try {
      const { record, action, actAs } = await links.use(idOf(request), readBody(request).token);
      return reply.code(200).send({ action, actAs, approval: approvalView(record, ctx.pageUrl(record.id)) });
    } catch (err) {
      const error = failure(err);
      return reply.code(error.status).send({ error: { code: error.code, message: error.status === 500 ? 'internal error' : error.message } });
    }
  });

  function refused(reply: FastifyReply, err: unknown): FastifyReply {
    const error = failure(err);
    const message = error.status === 500 ? 'Internal error.' : `${error.message} (${error.code})`;
    return sendPage(reply, error.status, linkRefusedPage(TITLE[error.status] ?? 'Something went wrong', message));
  }

  function failure(err: unknown): GatewayError & { status: number } {
    const error = asGatewayError(err);
    const status = LINK_STATUS[error.code] ?? statusOf(error);
    if (status === 500) ctx.log.error('approval link failed', { code: error.code, error: error.message });
    return Object.assign(error, { status });
  }
}

function idOf(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}
