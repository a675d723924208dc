import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../log.ts';
import type { Caller } from '../protocol/call.ts';
import { ApproverAccess, type ApproverKeyConfig } from './access.ts';
import type { OAuthResource } from './oauth-resource.ts';
import { ApproverActions, type ApprovalDesk } from './actions.ts';
import { registerApprovalsApi } from './api.ts';
import { registerPolicyApi } from './policy-api.ts';
import { registerAuditApi } from './audit-api.ts';
import { registerToolPinsApi } from './tools-api.ts';
import type { PinDecisions } from '../call/pin-desk.ts';
import type { AuditQueries } from '../audit/query.ts';
import type { AuditTail } from '../audit/tail.ts';
import type { Kernel } from '../kernel/kernel.ts';
import type { ToolFacts } from '../call/catalog.ts';
import type { StatedCall } from '../kernel/authoring/call.ts';
import { SECURITY_HEADERS, type ApproverContext } from './context.ts';
import type { ConsoleSources } from './console/sources.ts';
import { CsrfTokens } from './csrf.ts';
import { registerApprovalPages } from './pages.ts';
import { registerLinkPages } from './link-pages.ts';
import type { ActionLinks } from '../approvals/action-links.ts';
import { registerConsole } from './console/register.ts';
import { dataDirSecret, deriveKey } from '../approvals/signing.ts';
import { SessionCookies } from './session-cookie.ts';

/** What the approver routes need of the core, and the core's settings they follow. */
export interface ApproverServices {
  approvals: ApprovalDesk;
  /** For the policy endpoints (`/api/policy`, `/api/policy/explain`). */
  kernel: Pick<Kernel, 'bundle' | 'explain' | 'mayList'>;
  /** The live catalog's facts of a namespaced tool, which `/api/policy/explain` decides on. */
  toolFacts?(call: StatedCall): ToolFacts | undefined;
  /** An approval's page, the same link the caller and the webhook are given (`ApprovalLinks.url`). */
  pageUrl(id: string): string | undefined;
  /** The audit trail's calls, for `/api/audit`, `/api/jobs/:id` and the console; absent where there is no audit store to read. */
  audit?: AuditQueries;
  /** The live tail of the audit chain as calls, for the console's Activity feed. */
  activity?: Pick<AuditTail, 'subscribe'>;
  /** The pinned tool definitions (`/api/tools/pins`, the Upstreams page); absent where the gateway keeps none. */
  pins?: PinDecisions;
  /** What the console's Policy, Upstreams and Overview pages read of the running gateway. */
  console?: ConsoleSources;
  dataDir: string;
  /** `approvals.signingKey`; without it, a key created once in `<dataDir>/secrets/approver-session.key`. */
  signingKey?: string;
  /** `approvals.publicUrl`: an accepted Origin for form posts, and whether the session cookie is `Secure`. */
  publicUrl?: string;
  /** The webhook notices' approve and deny links, served at `/approvals/<id>/link` when the webhook has them. */
  actionLinks?: ActionLinks;
}

export interface ApproverRoutesOptions extends ApproverServices {
  /** The address the server binds: loopback lets the local user approve when there are no API keys. */
  host: string;
  apiKeys: readonly ApproverKeyConfig[];
  anonymous: Caller;
  log: Logger;
  now?: () => number;
  /** `auth.oauth`: access tokens with a roles claim act on the API as keys with those roles do. */
  oauth?: OAuthResource;
}

/** How long a browser login lasts. */
const SESSION_TTL_MS = 12 * 60 * 60_000;


/**
 * The operators' side of the HTTP front: the JSON API under /api, the approval pages under /approvals and the
 * console at / (console/register.ts), on the server that serves /mcp. Its Host/Origin guard still runs first; authentication is the routes' own.
 */
export async function registerApproverRoutes(app: FastifyInstance, options: ApproverRoutesOptions): Promise<void> {
  const now = options.now ?? Date.now;
  const secret = options.signingKey ?? (await sessionSecret(options));
  const base = options.publicUrl?.replace(/\/+$/, '');
  const sessions = new SessionCookies(deriveKey(secret, 'approver-session'), { ttlMs: SESSION_TTL_MS, secure: base?.startsWith('https:') ?? false, now });
  const ctx: ApproverContext = {
    actions: new ApproverActions(options.approvals),
    access: new ApproverAccess(options, sessions),
    sessions,
    csrf: new CsrfTokens(deriveKey(secret, 'approver-csrf')),
    publicOrigin: base && new URL(base).origin,
    log: options.log,
    now,
    pageUrl: options.pageUrl,
  };
  await app.register(async (scope) => {
    scope.addHook('onSend', (_request, reply, payload, done) => {
      reply.headers(SECURITY_HEADERS);
      done(null, payload);
    });
    registerApprovalsApi(scope, ctx);
    registerPolicyApi(scope, ctx, options.kernel, (call) => options.toolFacts?.(call));
    registerAuditApi(scope, ctx, options.audit);
    registerToolPinsApi(scope, ctx, options.pins);
    registerApprovalPages(scope, ctx);
    if (options.actionLinks) registerLinkPages(scope, ctx, options.actionLinks);
    registerConsole(scope, ctx, options);
  });
}

/** A data dir that cannot hold the key still serves, with sessions that end at restart. */
async function sessionSecret(options: ApproverRoutesOptions): Promise<string> {
  try {
    return await dataDirSecret(options.dataDir, 'approver-session');
  } catch (err) {
    options.log.warn('could not keep the approver session key in the data dir; browser sessions end when Gatehouse restarts', { error: (err as Error).message });
    return randomBytes(32).toString('hex');
  }
}
