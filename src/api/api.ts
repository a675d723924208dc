import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { APPROVAL_TRANSITIONS, type ApprovalState } from '../protocol/approval-record.ts';
import { asGatewayError, GatewayError } from '../errors.ts';
import type { Approver } from './access.ts';
import { approvalDetailView, approvalView, grantView, statusOf, type Decision } from './actions.ts';
import { APPROVER_API, type ApproverContext } from './context.ts';

const STATES = new Set<string>([...Object.keys(APPROVAL_TRANSITIONS), 'all']);

/**
 * The approvals API, for scripts and chat bots: JSON in and out, the approver named by an API key with the
 * approver role (`Authorization: Bearer <key>`). Errors are `{ error: { code, message } }`. No cookie is ever
 * read here, so another site cannot make a browser call it with someone's credentials.
 */
export function registerApprovalsApi(app: FastifyInstance, ctx: ApproverContext): void {
  const route = { config: { approver: APPROVER_API } };

  const serve = (request: FastifyRequest, reply: FastifyReply, handle: (approver: Approver) => Promise<unknown>) => serveJson(ctx, request, reply, handle);

  const list = (request: FastifyRequest, reply: FastifyReply) =>
    serve(request, reply, async (approver) => {
      const state = (request.query as Record<string, unknown>).state ?? 'pending';
      if (typeof state !== 'string' || !STATES.has(state)) {
        throw new GatewayError('GH_ERR_INVALID_REQUEST', `state must be one of ${[...STATES].join(', ')}`);
      }
      const records = await ctx.actions.list(approver, state as ApprovalState | 'all');
      return { approvals: records.map((r) => approvalView(r, ctx.pageUrl(r.id))) };
    });
  // With a trailing slash too: JSON has no relative links to break (the page redirects instead, see pages.ts).
  app.get('/api/approvals', route, list);
  app.get('/api/approvals/', route, list);

  app.get('/api/approvals/:id', route, (request, reply) =>
    serve(request, reply, async (approver) => {
      const record = await ctx.actions.get(approver, idOf(request));
      return { approval: approvalDetailView(record, ctx.pageUrl(record.id)) };
    }),
  );

  for (const decision of ['approve', 'deny'] as Decision[]) {
    app.post(`/api/approvals/:id/${decision}`, route, (request, reply) =>
      serve(request, reply, async (approver) => {
        const body = readBody(request);
        if (decision === 'approve' && body.args !== undefined) {
          if (body.grant !== undefined) throw new GatewayError('GH_ERR_INVALID_REQUEST', 'send args or grant, not both: a grant covers calls as they come, an edit changes one');
          const record = await ctx.actions.approveWithEdit(approver, idOf(request), body.args, body.reason);
          return { approval: approvalDetailView(record, ctx.pageUrl(record.id)) };
        }
        if (decision === 'approve' && body.grant !== undefined) {
          const { approval, grant } = await ctx.actions.approveWithGrant(approver, idOf(request), body.grant, body.reason);
          return { approval: approvalDetailView(approval, ctx.pageUrl(approval.id)), grant: grantView(grant) };
        }
        const record = await ctx.actions.decide(approver, idOf(request), decision, body.reason);
        return { approval: approvalDetailView(record, ctx.pageUrl(record.id)) };
      }),
    );
  }

  app.get('/api/grants', route, (request, reply) =>
    serve(request, reply, async (approver) => {
      const state = (request.query as Record<string, unknown>).state ?? 'live';
      if (state !== 'live' && state !== 'all') throw new GatewayError('GH_ERR_INVALID_REQUEST', 'state must be live or all');
      return { grants: (await ctx.actions.grants(approver, state)).map(grantView) };
    }),
  );
  app.post('/api/grants/:id/revoke', route, (request, reply) =>
    serve(request, reply, async (approver) => ({ grant: grantView(await ctx.actions.revokeGrant(approver, idOf(request))) })),
  );
}

/**
 * One API request: admits the approver by key (or the local user), runs `handle`, and answers its value as JSON,
 * or `{ error: { code, message } }` with the status the error's code calls for.
 */
export async function serveJson(ctx: ApproverContext, request: FastifyRequest, reply: FastifyReply, handle: (approver: Approver) => Promise<unknown>, who: 'approver' | 'reader' = 'approver') {
  let admission = ctx.access[who === 'reader' ? 'reader' : 'bearer'](request.headers.authorization, header(request, 'x-api-key'));
  if (admission.refused?.status === 401) admission = (await ctx.access.byToken(request.headers.authorization, who)) ?? admission;
  if (admission.refused) {
    if (admission.refused.status === 401) reply.header('www-authenticate', admission.refused.challenge ?? 'Bearer');
    return reply.code(admission.refused.status).send({ error: { code: admission.refused.code, message: admission.refused.message } });
  }
  try {
    return reply.code(200).send(await handle(admission.approver));
  } catch (err) {
    const error = asGatewayError(err);
    const status = statusOf(error);
    if (status === 500) ctx.log.error('API request failed', { code: error.code, error: error.message });
    return reply.code(status).send({ error: { code: error.code, message: status === 500 ? 'internal error' : error.message } });
  }
}

/** `{ reason? }` as JSON; no body at all is fine. A form or text body is refused, so no HTML form can post here. */
export function readBody(request: FastifyRequest): Record<string, unknown> {
  const type = request.headers['content-type'];
  if (request.body === undefined && !type) return {};
  if (!type?.includes('application/json')) throw new GatewayError('GH_ERR_INVALID_REQUEST', 'send the body as application/json');
  const body = request.body;
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new GatewayError('GH_ERR_INVALID_REQUEST', 'the body must be a JSON object');
  return body as Record<string, unknown>;
}

function idOf(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value.trim() : undefined;
}
