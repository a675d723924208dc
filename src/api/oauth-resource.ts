import type { TokenVerifier } from '../ports.ts';
import type { Caller } from '../protocol/call.ts';
import { isGatewayError } from '../errors.ts';

/** What of `auth.oauth` the resource server needs here (the verifier holds the rest). */
export interface OAuthResourceOptions {
  issuer: string;
  /** This server's resource URL (RFC 8707), e.g. `https://gatehouse.example.com/mcp`. */
  audience: string;
  requiredScopes: readonly string[];
  claims: { principal: string; tenant?: string; roles?: string };
}

/** Who a verified token speaks for, and what it may do beyond calling tools. */
export interface TokenIdentity {
  caller: Caller;
  /** The token's values of the roles claim that name Gatehouse roles. */
  roles: string[];
}

export interface TokenRefusal {
  status: 401 | 403 | 503;
  code: 'GH_ERR_UNAUTHORIZED' | 'GH_ERR_FORBIDDEN' | 'GH_ERR_AUTH_SERVER_UNAVAILABLE';
  message: string;
  /** The `WWW-Authenticate` value to send with it. */
  challenge: string;
}

export type TokenAdmission = { identity: TokenIdentity; refused?: undefined } | { identity?: undefined; refused: TokenRefusal };

const GATEHOUSE_ROLES = new Set(['viewer', 'approver', 'metrics', 'admin']);

/**
 * Gatehouse as an OAuth 2.1 resource server: what a verified token's claims mean here (principal, tenant, roles,
 * scopes), the protected resource metadata (RFC 9728) that tells a client where to get a token, and the
 * `WWW-Authenticate` challenges that point to it.
 */
export class OAuthResource {
  /** Where the metadata lives: the well-known prefix inserted before the resource's path (RFC 9728 §3.1). */
  readonly metadataPaths: string[];
  readonly metadataUrl: string;

  constructor(
    private readonly verifier: TokenVerifier,
    private readonly options: OAuthResourceOptions,
  ) {
    const resource = new URL(options.audience);
    const path = resource.pathname === '/' ? '' : resource.pathname.replace(/\/+$/, '');
    this.metadataPaths = [...new Set(['/.well-known/oauth-protected-resource', `/.well-known/oauth-protected-resource${path}`])];
    this.metadataUrl = `${resource.origin}${this.metadataPaths.at(-1)}`;
  }

  metadata(): Record<string, unknown> {
    return {
      resource: this.options.audience,
      authorization_servers: [this.options.issuer],
      scopes_supported: [...this.options.requiredScopes],
      bearer_methods_supported: ['header'],
      resource_name: 'Gatehouse',
    };
  }

  /** The challenge of a 401 (no `error` when no token was sent, RFC 6750 §3.1) or a 403 for scopes. */
  challenge(error?: 'invalid_token' | 'insufficient_scope'): string {
    const parts = [`resource_metadata="${this.metadataUrl}"`];
    if (error) parts.push(`error="${error}"`);
    if (error === 'insufficient_scope') parts.push(`scope="${this.options.requiredScopes.join(' ')}"`);
    return `Bearer ${parts.join(', ')}`;
  }

  /** Never throws: a token that fails to verify, or whose claims do not fit, is a refusal. */
  async admit(token: string): Promise<TokenAdmission> {
    let claims: Record<string, unknown>;
    try {
      claims = await this.verifier.verify(token);
    } catch (err) {
      if (isGatewayError(err, 'GH_ERR_AUTH_SERVER_UNAVAILABLE')) return { refused: { status: 503, code: 'GH_ERR_AUTH_SERVER_UNAVAILABLE', message: `the token could not be checked: ${err.message}`, challenge: this.challenge() } };
      const message = isGatewayError(err, 'GH_ERR_UNAUTHORIZED') ? err.message : 'invalid token';
      return this.invalid(`Unauthorized: ${message}`);
    }
    const { principal: principalClaim, tenant: tenantClaim, roles: rolesClaim } = this.options.claims;
    const principal = claims[principalClaim];
    if (typeof principal !== 'string' || principal === '') return this.invalid(`Unauthorized: the token has no ${principalClaim} claim to name its principal`);
    const tenant = tenantClaim === undefined ? 'default' : claims[tenantClaim];
    if (typeof tenant !== 'string' || tenant === '') return this.invalid(`Unauthorized: the token has no ${tenantClaim} claim to name its tenant`);
    const scopes = new Set(valuesOf(claims.scope ?? claims.scp));
    const missing = this.options.requiredScopes.filter((s) => !scopes.has(s));
    if (missing.length > 0) {
      return { refused: { status: 403, code: 'GH_ERR_FORBIDDEN', message: `Forbidden: the token lacks the scopes ${missing.join(' ')}`, challenge: this.challenge('insufficient_scope') } };
    }
    const roles = rolesClaim === undefined ? [] : valuesOf(claims[rolesClaim]).filter((r) => GATEHOUSE_ROLES.has(r));
    return { identity: { caller: { principal, tenant }, roles } };
  }

  private invalid(message: string): TokenAdmission {
    return { refused: { status: 401, code: 'GH_ERR_UNAUTHORIZED', message, challenge: this.challenge('invalid_token') } };
  }
}

/** A claim holding several values: an array of strings, or one space-separated string (as `scope` is). */
function valuesOf(claim: unknown): string[] {
  if (typeof claim === 'string') return claim.split(' ').filter(Boolean);
  return Array.isArray(claim) ? claim.filter((v): v is string => typeof v === 'string') : [];
}
