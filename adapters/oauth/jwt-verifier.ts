import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { GatewayError, isGatewayError } from '../../src/errors.ts';
import type { TokenVerifier } from '../../src/ports.ts';
import { discoverJwksUri } from './discovery.ts';
import type { Dispatcher } from 'undici';
import { fetchFromAuthorizationServer } from './outbound.ts';
import { VerifiedTokens } from './verified-tokens.ts';

export interface JwtVerifierOptions {
  issuer: string;
  /** This server's resource URL: `aud` must contain it. */
  audience: string;
  /** Unset: discovered from the issuer's metadata on first use. */
  jwksUri?: string;
  algorithms: readonly string[];
  clockToleranceMs: number;
  /** The least time between two JWKS fetches that a token with an unknown `kid` triggers (a failed discovery waits as long). */
  jwksCooldownMs: number;
  /** Where connections to the authorization server come from: the SSRF guard's dispatcher in Gatehouse. */
  dispatcher?: Dispatcher;
}

/**
 * How long a verified JWT is taken again without checking its signature (never past its `exp`): a key the issuer
 * withdraws stops its tokens this much later at most. A signature check costs 100-200 µs; a hash about 1 µs.
 */
export const VERIFIED_JWT_CACHE_MS = 60_000;

/**
 * A JWT access token, checked against the issuer's published keys: signature, algorithm allow-list, `iss`, `aud`,
 * `exp` and `nbf`. The key set is fetched lazily and cached; a `kid` it does not know fetches it again (the issuer
 * rotated its keys), at most once per cooldown. A token verified once is taken for a minute (VERIFIED_JWT_CACHE_MS).
 */
export class JwtVerifier implements TokenVerifier {
  private keys: Promise<JWTVerifyGetKey> | undefined;
  private failedAt = -Infinity;
  private readonly verified = new VerifiedTokens();

  constructor(private readonly options: JwtVerifierOptions) {}

  async verify(token: string): Promise<Record<string, unknown>> {
    const digest = this.verified.digest(token);
    const now = Date.now();
    const known = this.verified.get(digest, now);
    if (known) return known;
    const keys = await this.keySet();
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: [...this.options.algorithms],
        clockTolerance: Math.ceil(this.options.clockToleranceMs / 1000),
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw asVerifyError(err);
    }
    this.verified.set(digest, payload, Math.min(now + VERIFIED_JWT_CACHE_MS, (payload.exp as number) * 1000 + this.options.clockToleranceMs));
    return payload;
  }

  private keySet(): Promise<JWTVerifyGetKey> {
    if (this.keys) return this.keys;
    if (Date.now() - this.failedAt < this.options.jwksCooldownMs) {
      return Promise.reject(new GatewayError('GH_ERR_AUTH_SERVER_UNAVAILABLE', `the keys of ${this.options.issuer} could not be found a moment ago`));
    }
    const found = (async () => {
      const { dispatcher } = this.options;
      const uri = this.options.jwksUri ?? (await discoverJwksUri(this.options.issuer, dispatcher));
      const fetchKeys = (url: string, { dispatcher: _, ...init }: RequestInit) => fetchFromAuthorizationServer(url, { ...init, ...(dispatcher ? { dispatcher } : {}) });
      return createRemoteJWKSet(new URL(uri), { cooldownDuration: this.options.jwksCooldownMs, [customFetch]: fetchKeys });
    })();
    this.keys = found;
    found.catch(() => {
      this.keys = undefined;
      this.failedAt = Date.now();
    });
    return found;
  }
}

/** Why a token is refused (401), or that its issuer could not be asked (503): never the token itself. */
function asVerifyError(err: unknown): GatewayError {
  if (isGatewayError(err)) return err;
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || !(err instanceof errors.JOSEError)) {
    return new GatewayError('GH_ERR_AUTH_SERVER_UNAVAILABLE', `the issuer's keys could not be fetched: ${(err as Error).message}`, { cause: err });
  }
  return new GatewayError('GH_ERR_UNAUTHORIZED', `invalid token: ${err.message}`, { data: { reason: err.code } });
}
