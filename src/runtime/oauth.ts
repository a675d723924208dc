import type { GatehouseConfig } from '../config/schema.ts';
import type { TokenVerifier } from '../ports.ts';
import { createTokenVerifier } from '../../adapters/oauth/token-verifier.ts';

/** The verifier of `auth.oauth`'s access tokens, when it is configured (both modes: each replica checks on its own). */
export function tokenVerifierFor(config: GatehouseConfig): { tokenVerifier?: TokenVerifier } {
  const oauth = config.auth?.oauth;
  if (!oauth) return {};
  return {
    tokenVerifier: createTokenVerifier({
      issuer: oauth.issuer,
      audience: oauth.audience,
      ...(oauth.jwksUri ? { jwksUri: oauth.jwksUri } : {}),
      algorithms: oauth.algorithms,
      clockToleranceMs: oauth.clockTolerance,
      jwksCooldownMs: oauth.jwksCooldown,
      ...(oauth.introspection ? { introspection: oauth.introspection } : {}),
    }),
  };
}
