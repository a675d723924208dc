import type { FastifyInstance } from 'fastify';
import type { Caller } from '../protocol/call.ts';
import type { ApproverKeyConfig } from './access.ts';
import { APPROVER_API } from './context.ts';
import { HttpGuard, bearerToken } from './http-guard.ts';
import type { OAuthResource } from './oauth-resource.ts';

/** The Prometheus text exposition, as the metrics adapter renders it. */
export type MetricsScrape = () => Promise<{ contentType: string; text: string }>;

export interface MetricsRouteOptions {
  scrape: MetricsScrape;
  /** `metrics.token`: a bearer token that reads /metrics and nothing else. */
  token?: string;
  host: string;
  apiKeys: readonly ApproverKeyConfig[];
  anonymous: Caller;
  /** `auth.oauth`: an access token whose roles claim holds `metrics` or `admin` reads too. */
  oauth?: OAuthResource;
}

/** The roles of an API key that may read /metrics. */
export const METRICS_ROLES: readonly string[] = ['metrics', 'admin'];

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

type Refusal = { status: 401 | 403 | 503; code: 'GH_ERR_UNAUTHORIZED' | 'GH_ERR_FORBIDDEN' | 'GH_ERR_AUTH_SERVER_UNAVAILABLE'; message: string; challenge?: string };

/**
 * Who may scrape /metrics (the approval pages' trust, with its own role):
 *  - `metrics.token` in `Authorization: Bearer`, always;
 *  - with `auth.apiKeys`: a key with role `metrics` or `admin` (another key: 403; none: 401);
 *  - with `auth.oauth`: an access token whose roles claim holds `metrics` or `admin` (`tokenRefusal`);
 *  - without keys, token or oauth: anyone who reaches a loopback bind; nobody beyond loopback.
 */
export class MetricsAccess {
  private readonly token: HttpGuard | undefined;
  private readonly anyKey: HttpGuard | undefined;
  private readonly readers: HttpGuard | undefined;
  private readonly open: boolean;
  private readonly oauth: OAuthResource | undefined;

  constructor(options: Omit<MetricsRouteOptions, 'scrape'>) {
    this.oauth = options.oauth;
    const guard = (keys: readonly { key: string; principal: string; tenant: string }[]) => new HttpGuard({ host: options.host, port: 0, allowedHosts: [], allowedOrigins: [], apiKeys: [...keys], anonymous: options.anonymous });
    this.token = options.token ? guard([{ key: options.token, principal: 'metrics', tenant: '' }]) : undefined;
    const readers = options.apiKeys.filter((k) => k.roles?.some((r) => METRICS_ROLES.includes(r)));
    this.anyKey = options.apiKeys.length > 0 ? guard(options.apiKeys) : undefined;
    this.readers = readers.length > 0 ? guard(readers) : undefined;
    this.open = !this.anyKey && !this.token && !this.oauth && LOOPBACK.has(options.host);
  }

  /** Undefined when the request may read the metrics; else why not. */
  refusal(authorization: string | undefined, apiKeyHeader: string | undefined): Refusal | undefined {
    if (this.open) return undefined;
    if (authorization !== undefined && this.token?.authenticate(authorization, undefined)) return undefined;
    if (!this.anyKey) {
      if (this.token || this.oauth) return { status: 401, code: 'GH_ERR_UNAUTHORIZED', message: 'Unauthorized: send the metrics token as "Authorization: Bearer <token>"' };
      return { status: 403, code: 'GH_ERR_FORBIDDEN', message: 'Forbidden: Gatehouse listens beyond loopback without auth.apiKeys or metrics.token, so /metrics is closed' };
    }
    if (!this.anyKey.authenticate(authorization, apiKeyHeader)) return { status: 401, code: 'GH_ERR_UNAUTHORIZED', message: 'Unauthorized: send an API key with the metrics role as "Authorization: Bearer <key>"' };
    if (!this.readers?.authenticate(authorization, apiKeyHeader)) return { status: 403, code: 'GH_ERR_FORBIDDEN', message: 'Forbidden: this API key has neither the metrics nor the admin role' };
    return undefined;
  }

  /** After a 401 by key: the bearer as an access token. Undefined when it may read; the 401 stands when there is no token. */
  async tokenRefusal(authorization: string | undefined, keyRefusal: Refusal): Promise<Refusal | undefined> {
    const token = this.oauth && bearerToken(authorization);
    if (!this.oauth || !token) return keyRefusal;
    const admission = await this.oauth.admit(token);
    if (admission.refused) return admission.refused;
    if (!admission.identity.roles.some((r) => METRICS_ROLES.includes(r))) return { status: 403, code: 'GH_ERR_FORBIDDEN', message: "Forbidden: this token's roles claim holds neither metrics nor admin" };
    return undefined;
  }
}

/** GET /metrics in the Prometheus text format. It authenticates itself (the token is no API key), as the approvals API does. */
export function registerMetricsRoute(app: FastifyInstance, options: MetricsRouteOptions): void {
  const access = new MetricsAccess(options);
  app.get('/metrics', { config: { approver: APPROVER_API } }, async (request, reply) => {
    const apiKey = request.headers['x-api-key'];
    let refused = access.refusal(request.headers.authorization, typeof apiKey === 'string' ? apiKey : undefined);
    if (refused?.status === 401) refused = await access.tokenRefusal(request.headers.authorization, refused);
    if (refused) {
      if (refused.status === 401) reply.header('www-authenticate', refused.challenge ?? 'Bearer');
      return reply.code(refused.status).send({ error: { code: refused.code, message: refused.message } });
    }
    const { contentType, text } = await options.scrape();
    return reply.code(200).header('content-type', contentType).header('cache-control', 'no-store').send(text);
  });
}
