import type { UpstreamCredential } from '../../src/ports.ts';
import { CachedToken, requestToken, type TokenClient } from './token-endpoint.ts';

export interface ClientCredentialsOptions extends TokenClient {
  scope?: string;
  /** The upstream's resource URL (RFC 8707), sent as `resource`. */
  resource: string;
}

/**
 * Gatehouse's own access token for an upstream, by the OAuth client credentials grant: fetched when first needed,
 * cached until shortly before it expires (one request in flight however many calls wait for it), dropped when the
 * upstream refuses it. It is a header value and nothing else: never logged, never in an error.
 */
export class ClientCredentials implements UpstreamCredential {
  private readonly token = new CachedToken();

  constructor(private readonly options: ClientCredentialsOptions) {}

  authorization(): Promise<string> {
    const { scope, resource } = this.options;
    return this.token.authorization(() => requestToken(this.options, { grant_type: 'client_credentials', resource, ...(scope ? { scope } : {}) }));
  }

  rejected(): void {
    this.token.rejected();
  }
}
