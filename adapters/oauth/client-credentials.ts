import { GatewayError } from '../../src/errors.ts';
import type { Dispatcher } from 'undici';
import { clientBasicAuthorization, fetchFromAuthorizationServer } from './outbound.ts';

export interface ClientCredentialsOptions {
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string;
  scope?: string;
  /** The upstream's resource URL (RFC 8707), sent as `resource`. */
  resource: string;
  /** Where connections to the authorization server come from: the SSRF guard's dispatcher in Gatehouse. */
  dispatcher?: Dispatcher;
}

/** A token is renewed this long before it expires, so none is sent in its last moments. */
const RENEW_BEFORE_MS = 30_000;
/** A token answer without `expires_in` is used this long. */
const DEFAULT_LIFETIME_MS = 5 * 60_000;

/**
 * Gatehouse's own access token for an upstream, by the OAuth client credentials grant: fetched when first needed,
 * cached until shortly before it expires (one request in flight however many calls wait for it), dropped when the
 * upstream refuses it. It is a header value and nothing else: never logged, never in an error.
 */
export class ClientCredentials {
  private current: { value: Promise<string>; until: number } | undefined;

  constructor(private readonly options: ClientCredentialsOptions) {}

  authorization(): Promise<string> {
    const now = Date.now();
    if (this.current && this.current.until > now) return this.current.value;
    const entry: { value: Promise<string>; until: number } = { value: Promise.resolve(''), until: Infinity };
    entry.value = this.fetchToken(now, entry);
    this.current = entry;
    entry.value.then(
      () => undefined,
      () => {
        if (this.current === entry) this.current = undefined;
      },
    );
    return entry.value;
  }

  rejected(): void {
    this.current = undefined;
  }

  private async fetchToken(now: number, entry: { until: number }): Promise<string> {
    const { tokenEndpoint, clientId, clientSecret, scope, resource } = this.options;
    let response: Response;
    try {
      response = await fetchFromAuthorizationServer(tokenEndpoint, {
        method: 'POST',
        headers: { authorization: clientBasicAuthorization(clientId, clientSecret), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}),
        body: new URLSearchParams({ grant_type: 'client_credentials', resource, ...(scope ? { scope } : {}) }).toString(),
      });
    } catch (err) {
      throw new GatewayError('GH_ERR_AUTH_SERVER_UNAVAILABLE', `no token for the upstream: ${tokenEndpoint} could not be reached (${(err as Error).message})`, { cause: err });
    }
    const body = (await response.json().catch(() => undefined)) as { access_token?: unknown; token_type?: unknown; expires_in?: unknown; error?: unknown } | undefined;
    if (!response.ok || typeof body?.access_token !== 'string') {
      throw new GatewayError('GH_ERR_AUTH_SERVER_UNAVAILABLE', `no token for the upstream: ${tokenEndpoint} answered HTTP ${response.status}${typeof body?.error === 'string' ? ` (${body.error})` : ''}`);
    }
    const lifetime = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in * 1000 : DEFAULT_LIFETIME_MS;
    entry.until = now + Math.max(lifetime - RENEW_BEFORE_MS, lifetime / 2);
    return `Bearer ${body.access_token}`;
  }
}
