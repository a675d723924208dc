import type { GatehouseConfig, UpstreamOAuthConfig } from '../config/schema.ts';
import type { TokenVerifier } from '../ports.ts';
import { createTokenVerifier } from '../../adapters/oauth/token-verifier.ts';
import { ClientCredentials } from '../../adapters/oauth/client-credentials.ts';
import type { UpstreamCredential } from '../../adapters/mcp/http-upstream.ts';
import type { OutboundGuard } from '../../adapters/http/outbound-guard.ts';
import { outboundGuardFor } from './outbound.ts';

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
      dispatcher: outboundGuardFor(config).dispatcher(),
    }),
  };
}

/** Gatehouse's own token for an HTTP upstream with `oauth` (client credentials), where it is configured; every process that hosts the upstream gets its own. */
export function upstreamCredentialFor(upstream: { url: string; oauth?: UpstreamOAuthConfig }, guard: OutboundGuard): { credential?: UpstreamCredential } {
  const oauth = upstream.oauth;
  if (!oauth) return {};
  return { credential: new ClientCredentials({ ...oauth, resource: oauth.resource ?? upstream.url, dispatcher: guard.dispatcher() }) };
}
