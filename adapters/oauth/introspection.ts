import { GatewayError } from '../../src/errors.ts';
import type { TokenVerifier } from '../../src/ports.ts';
import type { Dispatcher } from 'undici';
import { clientBasicAuthorization, fetchFromAuthorizationServer } from './outbound.ts';
import { VerifiedTokens } from './verified-tokens.ts';

export interface IntrospectionOptions {
  endpoint: string;
  clientId: string;
  clientSecret: string;
  issuer: string;
  audience: string;
  clockToleranceMs: number;
  /** Where connections to the authorization server come from: the SSRF guard's dispatcher in Gatehouse. */
  dispatcher?: Dispatcher;
}

/** How long an active answer is reused (never past the token's `exp`): a revoked token lives this much longer at most. */
export const INTROSPECTION_CACHE_MS = 30_000;

/**
 * An opaque access token, asked about at the authorization server (RFC 7662): it must be active, issued by the
 * issuer, meant for this resource (`aud`) and unexpired. Active answers are cached briefly (VerifiedTokens).
 */
export class IntrospectionVerifier implements TokenVerifier {
  private readonly cache = new VerifiedTokens();
  private readonly authorization: string;

  constructor(private readonly options: IntrospectionOptions) {
    this.authorization = clientBasicAuthorization(options.clientId, options.clientSecret);
  }

  async verify(token: string): Promise<Record<string, unknown>> {
    const digest = this.cache.digest(token);
    const now = Date.now();
    const cached = this.cache.get(digest, now);
    if (cached) return cached;
    const claims = await this.introspect(token);
    const refusal = this.refusal(claims, now);
    if (refusal) throw new GatewayError('GH_ERR_UNAUTHORIZED', `invalid token: ${refusal}`, { data: { reason: refusal } });
    const exp = typeof claims.exp === 'number' ? claims.exp * 1000 : Infinity;
    this.cache.set(digest, claims, Math.min(now + INTROSPECTION_CACHE_MS, exp));
    return claims;
  }

  private async introspect(token: string): Promise<Record<string, unknown>> {
    let response: Response;
    try {
      response = await fetchFromAuthorizationServer(this.options.endpoint, {
        method: 'POST',
        headers: { authorization: this.authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}),
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
      });
    } catch (err) {
      throw new GatewayError('GH_ERR_AUTH_SERVER_UNAVAILABLE', `the introspection endpoint could not be reached: ${(err as Error).message}`, { cause: err });
    }
    const body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (!response.ok || typeof body !== 'object' || body === null) throw new GatewayError('GH_ERR_AUTH_SERVER_UNAVAILABLE', `the introspection endpoint answered HTTP ${response.status}`);
    return body;
  }

  private refusal(claims: Record<string, unknown>, now: number): string | undefined {
    if (claims.active !== true) return 'not active';
    if (claims.iss !== undefined && claims.iss !== this.options.issuer) return 'issued by another issuer';
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.includes(this.options.audience)) return 'meant for another resource';
    if (typeof claims.exp === 'number' && claims.exp * 1000 + this.options.clockToleranceMs <= now) return 'expired';
    if (typeof claims.nbf === 'number' && claims.nbf * 1000 - this.options.clockToleranceMs > now) return 'not yet valid';
    return undefined;
  }
}
