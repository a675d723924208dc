import { GatewayError } from '../../src/errors.ts';
import type { TokenVerifier } from '../../src/ports.ts';
import { IntrospectionVerifier, type IntrospectionOptions } from './introspection.ts';
import { JwtVerifier, type JwtVerifierOptions } from './jwt-verifier.ts';

export interface OAuthVerifierOptions extends JwtVerifierOptions {
  introspection?: Pick<IntrospectionOptions, 'endpoint' | 'clientId' | 'clientSecret'>;
}

/** A compact JWS is three base64url parts: anything else is an opaque token. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;

/** JWTs by signature, opaque tokens by introspection when it is configured (refused otherwise). */
export function createTokenVerifier(options: OAuthVerifierOptions): TokenVerifier {
  const jwt = new JwtVerifier(options);
  const introspection = options.introspection && new IntrospectionVerifier({ ...options.introspection, ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}), issuer: options.issuer, audience: options.audience, clockToleranceMs: options.clockToleranceMs });
  return {
    verify(token) {
      if (JWT_SHAPE.test(token)) return jwt.verify(token);
      if (introspection) return introspection.verify(token);
      return Promise.reject(new GatewayError('GH_ERR_UNAUTHORIZED', 'invalid token: not a JWT, and auth.oauth.introspection is not configured', { data: { reason: 'opaque' } }));
    },
  };
}
