import type { FastifyReply, FastifyRequest } from 'fastify';
import { asGatewayError } from '../../errors.ts';
import type { Approver } from '../access.ts';
import { statusOf } from '../actions.ts';
import { serveJson } from '../api.ts';
import type { ApproverContext } from '../context.ts';

/**
 * A read-only JSON feed of a console page: for a script with a key (`Authorization: Bearer`, the viewer role or
 * more) as the audit API admits it, or for the page's own script with the browser's session cookie (SameSite=Strict,
 * and no CORS header, so another site can neither send it nor read the answer). Only for GETs that change nothing.
 */
export function serveConsoleJson(ctx: ApproverContext, request: FastifyRequest, reply: FastifyReply, handle: (reader: Approver) => Promise<unknown>) {
  if (request.headers.authorization !== undefined || request.headers['x-api-key'] !== undefined) return serveJson(ctx, request, reply, handle, 'reader');
  const admission = ctx.access.cookie(request.headers.cookie);
  if (admission.refused) return reply.code(admission.refused.status).send({ error: { code: admission.refused.code, message: admission.refused.message } });
  return handle(admission.approver).then(
    (body) => reply.code(200).send(body),
    (err) => {
      const error = asGatewayError(err);
      const status = statusOf(error);
      if (status === 500) ctx.log.error('console feed failed', { code: error.code, error: error.message });
      return reply.code(status).send({ error: { code: error.code, message: status === 500 ? 'internal error' : error.message } });
    },
  );
}
