import { GatewayError } from '../../src/errors.ts';
import type { Dispatcher } from 'undici';
import { clientBasicAuthorization, fetchFromAuthorizationServer } from './outbound.ts';

/** Gatehouse as a confidential client of the authorization server's token endpoint. */
export interface TokenClient {
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string;
  /** Where connections to the authorization server come from: the SSRF guard's dispatcher in Gatehouse. */
  dispatcher?: Dispatcher;
}

/** A token is renewed this long before it expires, so none is sent in its last moments. */
const RENEW_BEFORE_MS = 30_000;
/** A token answer without `expires_in` is used this long. */
const DEFAULT_LIFETIME_MS = 5 * 60_000;

/**
 * One grant at the token endpoint: the Authorization header value it yields, and how long to keep it (its
 * lifetime less a margin). The token is never put into an error: only the endpoint, the status and the OAuth error code.
 */
export async function requestToken(client: TokenClient, form: Record<string, string>): Promise<{ authorization: string; keepMs: number }> {
  const { tokenEndpoint, clientId, clientSecret, dispatcher } = client;
  let response: Response;
  try {
    response = await fetchFromAuthorizationServer(tokenEndpoint, {
      method: 'POST',
      headers: { authorization: clientBasicAuthorization(clientId, clientSecret), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      ...(dispatcher ? { dispatcher } : {}),
      body: new URLSearchParams(form).toString(),
    });
  } catch (err) {
    throw new GatewayError('GH_ERR_AUTH_SERVER_UNAVAILABLE', `no token for the upstream: ${tokenEndpoint} could not be reached (${(err as Error).message})`, { cause: err });
  }
  const body = (await response.json().catch(() => undefined)) as { access_token?: unknown; expires_in?: unknown; error?: unknown } | undefined;
  if (!response.ok || typeof body?.access_token !== 'string') {
    throw new GatewayError('GH_ERR_AUTH_SERVER_UNAVAILABLE', `no token for the upstream: ${tokenEndpoint} answered HTTP ${response.status}${typeof body?.error === 'string' ? ` (${body.error})` : ''}`, { data: { httpStatus: response.status, ...(typeof body?.error === 'string' ? { error: body.error } : {}) } });
  }
  const lifetime = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in * 1000 : DEFAULT_LIFETIME_MS;
  return { authorization: `Bearer ${body.access_token}`, keepMs: Math.max(lifetime - RENEW_BEFORE_MS, lifetime / 2) };
}

/**
 * One cached token: fetched by `fetch` when first needed (the fetcher is not kept: a caller's token stays with its
 * call), kept until `keepMs` after (one request in flight however many calls wait for it), dropped when the upstream
 * refuses it or its request fails.
 */
export class CachedToken {
  private current: { value: Promise<string>; until: number } | undefined;

  authorization(fetch: () => Promise<{ authorization: string; keepMs: number }>): Promise<string> {
    const now = Date.now();
    if (this.current && this.current.until > now) return this.current.value;
    const entry: { value: Promise<string>; until: number } = { value: Promise.resolve(''), until: Infinity };
    entry.value = fetch().then(({ authorization, keepMs }) => {
      entry.until = now + keepMs;
      return authorization;
    });
    this.current = entry;
    entry.value.catch(() => {
      if (this.current === entry) this.current = undefined;
    });
    return entry.value;
  }

  rejected(): void {
    this.current = undefined;
  }

  /** Whether it holds nothing usable any more (expired or dropped): a cache of many may forget it. */
  spent(now: number): boolean {
    return this.current === undefined || this.current.until <= now;
  }
}
