import type { FastifyRequest } from 'fastify';
import type { Logger } from '../log.ts';
import type { ApproverAccess } from './access.ts';
import type { ApproverActions } from './actions.ts';
import type { CsrfTokens } from './csrf.ts';
import type { SessionCookies } from './session-cookie.ts';

/** Route config marks: the front's onRequest hook leaves authentication of these routes to them. */
export const APPROVER_API = 'api';
export const APPROVER_PAGE = 'page';
export type ApproverRouteKind = typeof APPROVER_API | typeof APPROVER_PAGE;

/** The headers of every answer of the approver routes and the console (an event stream writes them itself). */
export const SECURITY_HEADERS = {
  // Scripts and stylesheets only from this server's /assets/, never inline; EventSource and fetch to this server.
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** What the approver routes share, built once at startup. */
export interface ApproverContext {
  actions: ApproverActions;
  access: ApproverAccess;
  sessions: SessionCookies;
  csrf: CsrfTokens;
  /** `approvals.publicUrl`'s origin, accepted as the Origin of form posts besides the Host they were sent to. */
  publicOrigin: string | undefined;
  log: Logger;
  now(): number;
  /** The approval's page, the same link the caller and the webhook were given. */
  pageUrl(id: string): string | undefined;
}

/** Which approver route a request was routed to (by the router, so `/%61pi/...` cannot dodge it), if any. */
export function approverRouteOf(request: FastifyRequest): ApproverRouteKind | undefined {
  const kind = (request.routeOptions.config as { approver?: unknown } | undefined)?.approver;
  return kind === APPROVER_API || kind === APPROVER_PAGE ? kind : undefined;
}
