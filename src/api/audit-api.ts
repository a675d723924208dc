import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../errors.ts';
import { outcomeOf, type AuditFilter, type AuditQueries } from '../audit/query.ts';
import { serveJson } from './api.ts';
import { APPROVER_API, type ApproverContext } from './context.ts';

const DEFAULT_LIMIT = 50;

/**
 * The audit trail's calls over HTTP, read-only: `GET /api/audit` (filters and a cursor in the query string, newest
 * call first) and `GET /api/jobs/:id` (one call with all its records, hashes included). Readable by the local user,
 * or a key with the viewer, approver or admin role, always within the key's own tenant.
 */
export function registerAuditApi(app: FastifyInstance, ctx: ApproverContext, audit: AuditQueries | undefined): void {
  const route = { config: { approver: APPROVER_API } };
  const queries = (): AuditQueries => {
    if (!audit) throw new GatewayError('GH_ERR_NOT_IMPLEMENTED', 'this gateway has no audit store to read calls from; use `gatehouse audit query`');
    return audit;
  };

  app.get('/api/audit', route, (request, reply) =>
    serveJson(
      ctx,
      request,
      reply,
      async (reader) => {
        const q = request.query as Record<string, unknown>;
        const limit = q.limit === undefined ? DEFAULT_LIMIT : Number(text(q, 'limit'));
        const cursor = text(q, 'cursor');
        return queries().calls(reader.tenant, filterOf(q), { limit, ...(cursor ? { cursor } : {}) });
      },
      'reader',
    ),
  );

  app.get('/api/jobs/:id', route, (request, reply) =>
    serveJson(
      ctx,
      request,
      reply,
      async (reader) => {
        const id = (request.params as { id: string }).id;
        const call = await queries().job(reader.tenant, id);
        if (!call) throw new GatewayError('GH_ERR_JOB_NOT_FOUND', `no job ${id} in tenant ${reader.tenant}'s audit trail`);
        return { call };
      },
      'reader',
    ),
  );
}

/** The filters of a query string (`session`, `principal`, `tool`, `decision`, `outcome`, `since`, `until`), checked. */
export function filterOf(q: Record<string, unknown>): AuditFilter {
  const filter: AuditFilter = {};
  for (const name of ['session', 'principal', 'tool', 'decision'] as const) {
    const value = text(q, name);
    if (value !== undefined) filter[name] = value;
  }
  const outcome = text(q, 'outcome');
  if (outcome !== undefined) filter.outcome = outcomeOf(outcome);
  for (const name of ['since', 'until'] as const) {
    const value = text(q, name);
    if (value === undefined) continue;
    const at = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
    if (Number.isNaN(at)) throw new GatewayError('GH_ERR_INVALID_REQUEST', `${name} must be an ISO date/time or milliseconds since the epoch`);
    filter[name] = at;
  }
  return filter;
}

function text(q: Record<string, unknown>, name: string): string | undefined {
  const value = q[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new GatewayError('GH_ERR_INVALID_REQUEST', `${name} must be given once`);
  return value;
}
