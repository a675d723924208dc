import type { Caller } from '../protocol/call.ts';
import { HttpGuard, bearerToken } from './http-guard.ts';
import type { OAuthResource } from './oauth-resource.ts';
import type { SessionCookies } from './session-cookie.ts';

export interface ApproverKeyConfig {
  key: string;
  principal: string;
  tenant: string;
  /**
   * `approver` (or `admin`) lets the key's principal act on approvals; `viewer` (or `approver`, `admin`) read the
   * audit API; `metrics` (or `admin`) read /metrics.
   */
  roles?: readonly string[];
}

/**
 * What a console user may do, each role including the ones before it: `viewer` reads (the console, the audit),
 * `approver` also decides approvals, `admin` also sees policy drafts and the DLQ.
 */
export const CONSOLE_ROLES = ['viewer', 'approver', 'admin'] as const;
export type ConsoleRole = (typeof CONSOLE_ROLES)[number];

/** Whether `role` includes `needed`. */
export function hasRole(role: ConsoleRole, needed: ConsoleRole): boolean {
  return CONSOLE_ROLES.indexOf(role) >= CONSOLE_ROLES.indexOf(needed);
}

/** Someone allowed to look at (and, with the role, act on) the console and approvals of one tenant. */
export interface Approver {
  principal: string;
  tenant: string;
  /** What CSRF tokens are bound to: the browser session, or the local user. */
  session: string;
  /** The highest console role of the principal's keys; the local user is `admin`. */
  role: ConsoleRole;
}

export type Admission =
  | { approver: Approver; refused?: undefined }
  | { approver?: undefined; refused: { status: 401 | 403 | 503; code: 'GH_ERR_UNAUTHORIZED' | 'GH_ERR_FORBIDDEN' | 'GH_ERR_AUTH_SERVER_UNAVAILABLE'; message: string; challenge?: string } };


const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * Who may act on approvals over HTTP.
 *  - API keys configured: keys with a console role, as the key's principal in the key's tenant; by
 *    `Authorization: Bearer` on the API, by a session cookie (made at /login or /approvals/login) on the pages.
 *    Deciding an approval takes the approver role (see `ApproverActions.decide`).
 *  - No API keys at all and bound to loopback: the local user, the same `anonymous` caller the MCP front serves
 *    (the OS user). This is the trust the CLI has: whoever can reach a loopback port can also run
 *    `gatehouse approvals approve` on this machine, and the Host/Origin guard keeps other sites' pages out.
 *  - No API keys and bound beyond loopback: nobody. Anyone on the network could otherwise approve.
 *  - With `auth.oauth`, as with keys (never the local user): besides keys, an access token whose roles claim
 *    holds the console role, on the API (`byToken`).
 */
export class ApproverAccess {
  readonly mode: 'keys' | 'local' | 'closed';
  private readonly anyKey: HttpGuard;
  private readonly approverKey: HttpGuard | undefined;
  private readonly readerKey: HttpGuard | undefined;
  /** The highest console role of each `tenant\0principal` that holds one. */
  private readonly roles = new Map<string, ConsoleRole>();

  private readonly local: Caller;
  private readonly oauth: OAuthResource | undefined;

  constructor(
    options: { host: string; apiKeys: readonly ApproverKeyConfig[]; anonymous: Caller; oauth?: OAuthResource },
    private readonly sessions: SessionCookies,
  ) {
    this.local = options.anonymous;
    this.oauth = options.oauth;
    const approverKeys = options.apiKeys.filter((k) => k.roles?.includes('approver') || k.roles?.includes('admin'));
    this.mode = options.apiKeys.length > 0 || options.oauth ? 'keys' : LOOPBACK.has(options.host) ? 'local' : 'closed';
    // HttpGuard only for its constant-time key matching; Host and Origin were checked before the route ran.
    const guard = (apiKeys: readonly ApproverKeyConfig[]) => new HttpGuard({ host: options.host, port: 0, allowedHosts: [], allowedOrigins: [], apiKeys: [...apiKeys], anonymous: options.anonymous, credentialsRequired: true });
    this.anyKey = guard(options.apiKeys);
    this.approverKey = approverKeys.length > 0 ? guard(approverKeys) : undefined;
    const readerKeys = options.apiKeys.filter((k) => CONSOLE_ROLES.some((role) => k.roles?.includes(role)));
    this.readerKey = readerKeys.length > 0 ? guard(readerKeys) : undefined;
    for (const key of readerKeys) {
      const id = `${key.tenant}\0${key.principal}`;
      const best = CONSOLE_ROLES.filter((role) => key.roles?.includes(role)).at(-1)!;
      const held = this.roles.get(id);
      if (!held || hasRole(best, held)) this.roles.set(id, best);
    }
  }

  /** An API request: an approver key in `Authorization: Bearer` (or `X-API-Key`). */
  bearer(authorization: string | undefined, apiKeyHeader: string | undefined): Admission {
    return this.byKey(this.approverKey, authorization, apiKeyHeader, 'an approver API key', 'does not have the approver role');
  }

  /** A read-only API request (the audit): a key with the viewer, approver or admin role, or the local user. */
  reader(authorization: string | undefined, apiKeyHeader: string | undefined): Admission {
    return this.byKey(this.readerKey, authorization, apiKeyHeader, 'an API key with the viewer role', 'has none of the roles viewer, approver or admin');
  }

  /** 401 for no key of this server, 403 for a key `roleKeys` does not hold, else the key's caller. */
  private byKey(roleKeys: HttpGuard | undefined, authorization: string | undefined, apiKeyHeader: string | undefined, wanted: string, lacking: string): Admission {
    if (this.mode !== 'keys') return this.localUser();
    if (!this.anyKey.authenticate(authorization, apiKeyHeader)) return refuse(401, 'GH_ERR_UNAUTHORIZED', `Unauthorized: send ${wanted} as "Authorization: Bearer <key>"`);
    const caller = roleKeys?.authenticate(authorization, apiKeyHeader);
    if (!caller) return refuse(403, 'GH_ERR_FORBIDDEN', `Forbidden: this API key ${lacking}`);
    return { approver: { principal: caller.principal, tenant: caller.tenant, session: `key:${caller.tenant}:${caller.principal}`, role: this.roleOf(caller.tenant, caller.principal)! } };
  }

  /**
   * An API request whose bearer is no API key of this server, as an access token (`auth.oauth`): its roles claim
   * must hold `approver` or `admin` to decide, any console role to read. Undefined when there is no token to try.
   */
  async byToken(authorization: string | undefined, who: 'approver' | 'reader'): Promise<Admission | undefined> {
    const token = this.oauth && bearerToken(authorization);
    if (!this.oauth || !token) return undefined;
    const admission = await this.oauth.admit(token);
    if (admission.refused) return { refused: admission.refused };
    const { caller, roles } = admission.identity;
    const role = CONSOLE_ROLES.filter((r) => roles.includes(r)).at(-1);
    if (!role || (who === 'approver' && !hasRole(role, 'approver'))) {
      return refuse(403, 'GH_ERR_FORBIDDEN', `Forbidden: this token's roles claim holds ${who === 'approver' ? 'neither approver nor admin' : 'none of viewer, approver or admin'}`);
    }
    return { approver: { principal: caller.principal, tenant: caller.tenant, session: `token:${caller.tenant}:${caller.principal}`, role } };
  }

  /** A browser request: the session cookie, of a key with any console role (what it may do is `role`). */
  cookie(cookieHeader: string | undefined): Admission {
    if (this.mode !== 'keys') return this.localUser();
    const session = this.sessions.read(cookieHeader);
    // A key removed from the config (or stripped of its roles) ends its sessions at the next start; its role is
    // the one configured now, not the one it signed in with.
    const role = session && this.roleOf(session.tenant, session.principal);
    if (!session || !role) return refuse(401, 'GH_ERR_UNAUTHORIZED', 'Sign in with an API key that has the viewer, approver or admin role');
    return { approver: { principal: session.principal, tenant: session.tenant, session: session.id, role } };
  }

  /** The login form: the key typed in, checked like a reader's bearer key (viewer, approver or admin). */
  login(key: string): Admission {
    return this.reader(`Bearer ${key}`, undefined);
  }

  private roleOf(tenant: string, principal: string): ConsoleRole | undefined {
    return this.roles.get(`${tenant}\0${principal}`);
  }

  private localUser(): Admission {
    if (this.mode === 'closed') {
      return refuse(403, 'GH_ERR_FORBIDDEN', 'Forbidden: Gatehouse listens beyond loopback without auth.apiKeys, so approvals over HTTP are off; add an API key with roles: [approver]');
    }
    return { approver: { principal: this.local.principal, tenant: this.local.tenant, session: `local:${this.local.tenant}:${this.local.principal}`, role: 'admin' } };
  }
}

function refuse(status: 401 | 403, code: 'GH_ERR_UNAUTHORIZED' | 'GH_ERR_FORBIDDEN', message: string): Admission {
  return { refused: { status, code, message } };
}
