import { GatewayError } from '../../src/errors.ts';
import type { Dispatcher } from 'undici';
import { fetchFromAuthorizationServer } from './outbound.ts';

/**
 * The issuer's `jwks_uri`, from its authorization server metadata (RFC 8414), or else its OpenID Connect discovery
 * document. The metadata must name the same issuer (RFC 8414 §3.3), or anyone who can serve a document at that
 * path could name the keys.
 */
export async function discoverJwksUri(issuer: string, dispatcher?: Dispatcher): Promise<string> {
  const base = new URL(issuer);
  const path = base.pathname === '/' ? '' : base.pathname.replace(/\/+$/, '');
  const candidates = [`${base.origin}/.well-known/oauth-authorization-server${path}`, `${base.origin}${path}/.well-known/openid-configuration`];
  const failures: string[] = [];
  for (const url of candidates) {
    let response: Response;
    try {
      response = await fetchFromAuthorizationServer(url, { headers: { accept: 'application/json' }, ...(dispatcher ? { dispatcher } : {}) });
    } catch (err) {
      failures.push(`${url}: ${(err as Error).message}`);
      continue;
    }
    if (!response.ok) {
      failures.push(`${url}: HTTP ${response.status}`);
      continue;
    }
    const metadata = (await response.json().catch(() => undefined)) as { issuer?: unknown; jwks_uri?: unknown } | undefined;
    if (metadata?.issuer !== issuer) throw new GatewayError('GH_ERR_AUTH_SERVER_UNAVAILABLE', `the metadata at ${url} names issuer ${String(metadata?.issuer)}, not ${issuer}`);
    if (typeof metadata.jwks_uri !== 'string') throw new GatewayError('GH_ERR_AUTH_SERVER_UNAVAILABLE', `the metadata at ${url} has no jwks_uri`);
    return metadata.jwks_uri;
  }
  throw new GatewayError('GH_ERR_AUTH_SERVER_UNAVAILABLE', `no authorization server metadata for ${issuer} (${failures.join('; ')})`);
}
