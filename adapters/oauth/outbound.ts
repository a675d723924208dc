/** How long one request to the authorization server may take before the token it was for is refused. */
export const AUTHORIZATION_SERVER_TIMEOUT_MS = 5_000;

/**
 * Every request Gatehouse sends to an authorization server (its metadata, its JWKS, its introspection endpoint)
 * goes through here, and nowhere else: the one seam where a guard on what may be fetched belongs. Redirects are
 * refused rather than followed, so the URL configured (or published in the issuer's metadata) is the one reached.
 */
export function fetchFromAuthorizationServer(url: string, init: RequestInit = {}): Promise<Response> {
  const signal = init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(AUTHORIZATION_SERVER_TIMEOUT_MS)]) : AbortSignal.timeout(AUTHORIZATION_SERVER_TIMEOUT_MS);
  return fetch(url, { ...init, redirect: 'manual', signal }).then((response) => {
    if (response.status >= 300 && response.status < 400) throw new Error(`${url} answered with a redirect, which is not followed`);
    return response;
  });
}

/** HTTP Basic client authentication at the authorization server: id and secret form-encoded first (RFC 6749 §2.3.1). */
export function clientBasicAuthorization(clientId: string, clientSecret: string): string {
  const encode = (text: string) => encodeURIComponent(text).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`;
}
