import type { Dispatcher, fetch as UndiciFetch } from 'undici';
import { undici } from '../http/undici.ts';
import { isGatewayError } from '../../src/errors.ts';

/** How long one request to the authorization server may take before the token it was for is refused. */
export const AUTHORIZATION_SERVER_TIMEOUT_MS = 5_000;

/**
 * Every request Gatehouse sends to an authorization server (its metadata, its JWKS, its introspection endpoint)
 * goes through here, and nowhere else: the one seam where a guard on what may be fetched belongs. Redirects are
 * refused rather than followed, so the URL configured (or published in the issuer's metadata) is the one reached.
 */
/** A fetch init whose dispatcher is an undici (npm) one, such as the SSRF guard's. */
export type AuthorizationServerInit = Omit<RequestInit, 'dispatcher'> & { dispatcher?: Dispatcher };

export function fetchFromAuthorizationServer(url: string, init: AuthorizationServerInit = {}): Promise<Response> {
  const signal = init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(AUTHORIZATION_SERVER_TIMEOUT_MS)]) : AbortSignal.timeout(AUTHORIZATION_SERVER_TIMEOUT_MS);
  // undici's fetch, not the global one: the SSRF guard's dispatcher is an undici (npm) Agent.
  return (undici().fetch(url, { ...init, redirect: 'manual', signal } as Parameters<typeof UndiciFetch>[1]) as unknown as Promise<Response>).then(
    (response) => {
      if (response.status >= 300 && response.status < 400) throw new Error(`${url} answered with a redirect, which is not followed`);
      return response;
    },
    (err: unknown) => {
      // fetch says only "fetch failed": the guard's refusal, its cause, is what names the host and address.
      const cause = (err as { cause?: unknown }).cause;
      throw isGatewayError(cause, 'GH_ERR_OUTBOUND_DENIED') ? cause : err;
    },
  );
}

/** HTTP Basic client authentication at the authorization server: id and secret form-encoded first (RFC 6749 §2.3.1). */
export function clientBasicAuthorization(clientId: string, clientSecret: string): string {
  const encode = (text: string) => encodeURIComponent(text).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`;
}
