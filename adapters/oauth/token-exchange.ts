import { createHash } from 'node:crypto';
import type { UpstreamCredential } from '../../src/ports.ts';
import { CachedToken, requestToken, type TokenClient } from './token-endpoint.ts';

export interface TokenExchangeOptions extends TokenClient {
  /** The upstream's resource URL (RFC 8707), sent as `resource`. */
  resource: string;
  /** The upstream's logical name at the authorization server, sent as `audience` when set. */
  audience?: string;
  scope?: string;
}

const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** Callers whose exchanged tokens are kept at once; past it, spent ones go first, then the oldest. */
const ENTRIES = 10_000;

/**
 * Tokens for one upstream on behalf of callers, by OAuth 2.0 token exchange (RFC 8693): the caller's access token
 * is the `subject_token`, Gatehouse authenticates as the client, and the authorization server answers with a token
 * for this upstream that names the caller as its subject (and Gatehouse as the actor). Each is cached by the
 * SHA-256 of the caller's token until shortly before it expires, and dropped on the upstream's 401. The caller's
 * token is held only by the credentials of calls in flight, never by the cache.
 */
export class TokenExchange {
  private readonly tokens = new Map<string, CachedToken>();

  constructor(private readonly options: TokenExchangeOptions) {}

  credential(subjectToken: string): UpstreamCredential {
    const digest = createHash('sha256').update(subjectToken).digest('base64url');
    return {
      authorization: () => this.tokenOf(digest).authorization(() => this.exchange(subjectToken)),
      rejected: () => this.tokens.get(digest)?.rejected(),
    };
  }

  private tokenOf(digest: string): CachedToken {
    const known = this.tokens.get(digest);
    if (known) return known;
    if (this.tokens.size >= ENTRIES) this.forgetSome();
    const token = new CachedToken();
    this.tokens.set(digest, token);
    return token;
  }

  private exchange(subjectToken: string): Promise<{ authorization: string; keepMs: number }> {
    const { resource, audience, scope } = this.options;
    return requestToken(this.options, {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      requested_token_type: ACCESS_TOKEN_TYPE,
      resource,
      ...(audience ? { audience } : {}),
      ...(scope ? { scope } : {}),
    });
  }

  private forgetSome(): void {
    const now = Date.now();
    for (const [digest, token] of this.tokens) if (token.spent(now)) this.tokens.delete(digest);
    if (this.tokens.size >= ENTRIES) this.tokens.delete(this.tokens.keys().next().value!);
  }
}
