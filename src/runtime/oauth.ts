import type { GatehouseConfig, UpstreamOAuthConfig } from '../config/schema.ts';
import type { CallerTokenExchange, TokenVerifier, UpstreamCredential } from '../ports.ts';
import { createTokenVerifier } from '../../adapters/oauth/token-verifier.ts';
import { ClientCredentials } from '../../adapters/oauth/client-credentials.ts';
import { TokenExchange } from '../../adapters/oauth/token-exchange.ts';
import { isStdioUpstream } from '../config/schema.ts';
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

/**
 * Gatehouse's own token for an HTTP upstream with `oauth` (client credentials: with `grant: token-exchange` too, for
 * its own requests, the handshake and lists); every process that hosts the upstream gets its own.
 */
export function upstreamCredentialFor(upstream: { url: string; oauth?: Omit<UpstreamOAuthConfig, 'grant'> & { grant?: UpstreamOAuthConfig['grant'] } }, guard: OutboundGuard): { credential?: UpstreamCredential; actsForCaller?: boolean } {
  const oauth = upstream.oauth;
  if (!oauth) return {};
  const { tokenEndpoint, clientId, clientSecret, scope } = oauth;
  const credential = new ClientCredentials({ tokenEndpoint, clientId, clientSecret, ...(scope ? { scope } : {}), resource: oauth.resource ?? upstream.url, dispatcher: guard.dispatcher() });
  return { credential, ...(oauth.grant === 'token-exchange' ? { actsForCaller: true } : {}) };
}

/**
 * The token exchange of every upstream with `oauth.grant: token-exchange`, pool-hosted ones included: a replica
 * exchanges for the calls it decides, and only the exchanged token goes to the worker that runs one.
 */
export function callerTokenExchangeFor(config: GatehouseConfig): { tokenExchange?: CallerTokenExchange } {
  const exchanges = new Map<string, TokenExchange>();
  const guard = outboundGuardFor(config);
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    if (isStdioUpstream(upstream) || upstream.oauth?.grant !== 'token-exchange') continue;
    const { tokenEndpoint, clientId, clientSecret, scope, audience, resource } = upstream.oauth;
    exchanges.set(name, new TokenExchange({ tokenEndpoint, clientId, clientSecret, ...(scope ? { scope } : {}), ...(audience ? { audience } : {}), resource: resource ?? upstream.url, dispatcher: guard.dispatcher() }));
  }
  if (exchanges.size === 0) return {};
  return {
    tokenExchange: {
      needs: (server) => exchanges.has(server),
      credential: (server, subjectToken) => exchanges.get(server)!.credential(subjectToken),
    },
  };
}
