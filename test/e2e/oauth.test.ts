import { generateKeyPair, SignJWT, UnsecuredJWT, decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, StreamableHTTPClientTransport, UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/client';
import { configSchema } from '../../src/config/schema.ts';
import { RpcErrorCode } from '../../src/protocol/jsonrpc.ts';
import { auditOf, connectHttp, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { INTROSPECTION_CLIENT, SIGNED_IN_USER, UPSTREAM_CLIENT, startOAuthServer, type OAuthServer } from '../helpers/oauth-server.ts';
import { recordingHttpUpstream } from '../fixtures/recording-http-upstream.ts';
import { freePort } from '../helpers/server-process.ts';

const API_KEY = 'ci-key-0123456789abcdef';
/** Gatehouse's own credential for the upstream: the only Authorization an upstream may ever see. */
const UPSTREAM_CREDENTIAL = 'Bearer gatehouse-own-upstream-credential';
const SCOPE = 'mcp:tools';
const MODERN_META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };

type Upstream = Awaited<ReturnType<typeof recordingHttpUpstream>>;

/**
 * The test's OAuth client: the SDK calls it through the flow; the "browser" is a fetch that follows the
 * authorization server's redirect no further than reading the code off it.
 */
class TestProvider implements OAuthClientProvider {
  private client: Record<string, unknown> | undefined;
  private saved: { access_token: string } | undefined;
  private verifier = '';
  callback: URLSearchParams | undefined;

  get redirectUrl() {
    return 'http://127.0.0.1:1/callback';
  }
  get clientMetadata() {
    return { client_name: 'gatehouse-test', redirect_uris: [this.redirectUrl], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  clientInformation() {
    return this.client as never;
  }
  saveClientInformation(info: Record<string, unknown>) {
    this.client = info;
  }
  tokens() {
    return this.saved as never;
  }
  saveTokens(tokens: { access_token: string }) {
    this.saved = tokens;
  }
  async redirectToAuthorization(url: URL) {
    const response = await fetch(url, { redirect: 'manual' });
    this.callback = new URL(response.headers.get('location')!).searchParams;
  }
  private discovery: unknown;
  saveDiscoveryState(state: unknown) {
    this.discovery = state;
  }
  discoveryState() {
    return this.discovery as never;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  accessToken() {
    return this.saved?.access_token;
  }
}

describe('OAuth 2.1 resource server (auth.oauth)', () => {
  let as: OAuthServer;
  let upstream: Upstream;
  let h: Harness;
  let audience: string;
  let origin: string;

  beforeAll(async () => {
    [as, upstream] = await Promise.all([startOAuthServer(), recordingHttpUpstream()]);
    // The gateway must know its URL (the tokens' audience) before it listens.
    const port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    audience = `${origin}/mcp`;
    const { auth } = configSchema.parse({
      auth: {
        apiKeys: [{ key: API_KEY, principal: 'ci' }],
        oauth: {
          issuer: as.issuer,
          audience,
          requiredScopes: [SCOPE],
          // Rotation is tested without a wait; the bound on refetching has its own test below.
          jwksCooldown: 0,
          claims: { roles: 'roles' },
          introspection: { endpoint: `${as.issuer}/introspect`, ...INTROSPECTION_CLIENT },
        },
      },
    });
    h = await startHarness({ auth, upstreams: { web: { url: upstream.url, headers: { authorization: UPSTREAM_CREDENTIAL }, timeout: 60_000 } } as never }, { port });
    await waitFor(() => h.gateway.catalog.entries().some((e) => e.name === 'web__echo'), 'the HTTP upstream’s tools');
  });

  afterAll(async () => {
    await h?.close();
    await Promise.all([as?.close(), upstream?.close()]);
  });

  /** One stateless (2026) tools/call of the upstream's echo, with `authorization` as sent. */
  const callEcho = (authorization?: string) =>
    fetch(audience, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-method': 'tools/call', 'mcp-name': 'web__echo', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'web__echo', arguments: {}, _meta: MODERN_META } }),
    });
  const metadataUrl = () => `${origin}/.well-known/oauth-protected-resource/mcp`;
  const validToken = (claims: Record<string, unknown> = {}) => as.sign({ aud: audience, scope: SCOPE, ...claims });

  it('serves the protected resource metadata (RFC 9728) without a token, at the root and under /mcp', async () => {
    for (const url of [metadataUrl(), `${origin}/.well-known/oauth-protected-resource`]) {
      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ resource: audience, authorization_servers: [as.issuer], scopes_supported: [SCOPE], bearer_methods_supported: ['header'], resource_name: 'Gatehouse' });
    }
  });

  it('answers a request without a token 401 with the challenge that points to the metadata, and no error parameter', async () => {
    const response = await callEcho();
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${metadataUrl()}"`);
    expect(((await response.json()) as { error: { data: { code: string } } }).error.data.code).toBe('GH_ERR_UNAUTHORIZED');
  });

  it('the SDK client’s OAuth flow end to end: 401, discovery, registration, authorize with PKCE, token for this resource; the call is audited as the token’s principal and the upstream sees only Gatehouse’s own credential', async () => {
    const provider = new TestProvider();
    const first = new StreamableHTTPClientTransport(new URL(audience), { authProvider: provider });
    await expect(new Client({ name: 'oauth-test', version: '1' }).connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(as.registered).toHaveLength(1);
    expect(provider.callback?.get('code')).toBeTruthy();
    await first.finishAuth(provider.callback!);
    const token = provider.accessToken()!;
    expect(decodeJwt(token)).toMatchObject({ aud: audience, sub: SIGNED_IN_USER, scope: SCOPE });

    const client = new Client({ name: 'oauth-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(audience), { authProvider: provider }));
    const result = await client.callTool({ name: 'web__echo', arguments: {} });
    expect(result.isError).toBeFalsy();
    await client.close();

    await waitFor(async () => (await auditOf(h.dataDir, 'default')).some((r) => r.actor === SIGNED_IN_USER && r.type === 'job.submitted'), 'the call in the audit');
    expect(upstream.authorizations.length).toBeGreaterThan(0);
    expect(new Set(upstream.authorizations)).toEqual(new Set([UPSTREAM_CREDENTIAL]));
    expect(upstream.authorizations.some((a) => a?.includes(token))).toBe(false);
  });

  it('takes an API key next to tokens: a bearer that is a key is the key’s caller', async () => {
    expect((await callEcho(`Bearer ${API_KEY}`)).status).toBe(200);
  });

  describe('refuses, each 401 invalid_token with nothing reaching the upstream', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const cases: [string, () => Promise<string>][] = [
      ['an expired token (beyond the 30 s leeway)', () => validToken({ iat: now() - 7200, exp: now() - 3600 })],
      ['a token not yet valid', () => validToken({ nbf: now() + 3600 })],
      ['a token for the wrong audience (a client id)', () => validToken({ aud: 'some-client-id' })],
      ['a token for another resource of the same issuer', () => validToken({ aud: 'https://other.example.com/mcp' })],
      ['a token from another issuer', () => validToken({ iss: 'https://evil.example.com' })],
      ['a token that never expires (no exp)', () => validToken({ exp: undefined })],
      ['an unsigned token (alg none)', async () => new UnsecuredJWT({ iss: as.issuer, sub: 'mallory', aud: audience, scope: SCOPE, exp: now() + 3600 }).encode()],
      [
        'HS256 with the issuer’s public key as the secret (HS/RS confusion)',
        async () =>
          new SignJWT({ iss: as.issuer, sub: 'mallory', aud: audience, scope: SCOPE, exp: now() + 3600 })
            .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
            .sign(new TextEncoder().encode(await as.publicKeyPem())),
      ],
      [
        'a token signed by a key the issuer never published (unknown kid)',
        async () => {
          const { privateKey } = await generateKeyPair('RS256');
          return new SignJWT({ iss: as.issuer, sub: 'mallory', aud: audience, scope: SCOPE, exp: now() + 3600 }).setProtectedHeader({ alg: 'RS256', kid: 'k9' }).sign(privateKey);
        },
      ],
      [
        'a token whose payload was changed after signing (bad signature)',
        async () => {
          const [header, , signature] = (await validToken()).split('.');
          const forged = Buffer.from(JSON.stringify({ iss: as.issuer, sub: 'mallory', aud: audience, scope: SCOPE, exp: now() + 3600 })).toString('base64url');
          return `${header}.${forged}.${signature}`;
        },
      ],
      ['an opaque token the authorization server says is not active', async () => 'not-a-token-anyone-issued'],
      ['an active opaque token meant for another resource', async () => as.opaque({ sub: 'bob', aud: 'https://other.example.com/mcp', scope: SCOPE, exp: now() + 3600 })],
    ];

    it.each(cases)('%s', async (_name, make) => {
      const before = upstream.calls.length;
      const response = await callEcho(`Bearer ${await make()}`);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${metadataUrl()}", error="invalid_token"`);
      expect(((await response.json()) as { error: { data: { code: string } } }).error.data.code).toBe('GH_ERR_UNAUTHORIZED');
      expect(upstream.calls.length).toBe(before);
    });

    it('while the same request with a valid token does reach it (the control)', async () => {
      const before = upstream.calls.length;
      expect((await callEcho(`Bearer ${await validToken()}`)).status).toBe(200);
      expect(upstream.calls.length).toBe(before + 1);
    });
  });

  it('refuses a token without the required scope 403 insufficient_scope, naming the scope', async () => {
    const before = upstream.calls.length;
    const response = await callEcho(`Bearer ${await validToken({ scope: 'other' })}`);
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${metadataUrl()}", error="insufficient_scope", scope="${SCOPE}"`);
    expect(((await response.json()) as { error: { data: { code: string } } }).error.data.code).toBe('GH_ERR_FORBIDDEN');
    expect(upstream.calls.length).toBe(before);
  });

  it('takes an active opaque token by introspection (RFC 7662), as its principal', async () => {
    const token = as.opaque({ sub: 'bob', aud: audience, scope: SCOPE, exp: Math.floor(Date.now() / 1000) + 3600 });
    expect((await callEcho(`Bearer ${token}`)).status).toBe(200);
    await waitFor(async () => (await auditOf(h.dataDir, 'default')).some((r) => r.actor === 'bob'), 'bob’s call in the audit');
  });

  it('follows a key rotation without a restart: a token signed with the new key works', async () => {
    expect((await callEcho(`Bearer ${await validToken()}`)).status).toBe(200);
    await as.rotate();
    const rotated = await validToken();
    expect(JSON.parse(Buffer.from(rotated.split('.')[0], 'base64url').toString())).toMatchObject({ kid: 'k2', alg: 'ES256' });
    expect((await callEcho(`Bearer ${rotated}`)).status).toBe(200);
  });

  it('gives a token’s roles claim the roles API keys give: /api and /metrics by role, 403 without it', async () => {
    const get = async (path: string, roles?: string[]) => (await fetch(`${origin}${path}`, { headers: { authorization: `Bearer ${await validToken(roles ? { roles } : {})}` } })).status;
    expect(await get('/api/approvals', ['approver'])).toBe(200);
    expect(await get('/api/approvals', ['viewer'])).toBe(403);
    expect(await get('/api/approvals')).toBe(403);
    expect(await get('/metrics', ['metrics'])).toBe(200);
    expect(await get('/metrics', ['viewer'])).toBe(403);
    const bad = await fetch(`${origin}/metrics`, { headers: { authorization: `Bearer ${await validToken({ roles: ['metrics'], aud: 'https://other.example.com/mcp' })}` } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toContain('error="invalid_token"');
    // Without any credential: no local-user trust once auth.oauth is on, even on loopback.
    expect((await fetch(`${origin}/api/approvals`)).status).toBe(401);
  });
});

describe('an HTTP upstream with its own OAuth credential (upstreams.<name>.oauth, client credentials)', () => {
  let as: OAuthServer;
  let upstream: Upstream;
  let h: Harness;

  beforeAll(async () => {
    [as, upstream] = await Promise.all([startOAuthServer(), recordingHttpUpstream()]);
    const oauth = { tokenEndpoint: `${as.issuer}/token`, ...UPSTREAM_CLIENT, scope: 'echo' };
    h = await startHarness({ upstreams: { web: { url: upstream.url, headers: { Authorization: 'Bearer a-static-header-it-replaces' }, oauth, timeout: 60_000 } } as never });
    await waitFor(() => h.gateway.catalog.entries().some((e) => e.name === 'web__echo'), 'the HTTP upstream’s tools');
  });

  afterAll(async () => {
    await h?.close();
    await Promise.all([as?.close(), upstream?.close()]);
  });

  it('sends Gatehouse’s own token for the upstream (aud = its URL), fetched once and reused while it is valid', async () => {
    const client = await connectHttp(h.url);
    for (let i = 0; i < 3; i++) expect((await client.callTool({ name: 'web__echo', arguments: {} })).isError).toBeFalsy();
    await client.close();
    expect(as.clientCredentialTokens()).toBe(1);
    const sent = new Set(upstream.authorizations);
    expect(sent.size).toBe(1);
    const [authorization] = [...sent];
    expect(authorization).toMatch(/^Bearer /);
    expect(decodeJwt(authorization!.slice('Bearer '.length))).toMatchObject({ sub: UPSTREAM_CLIENT.clientId, aud: upstream.url, scope: 'echo' });
  });

  it('drops a token the upstream answers 401: that call fails, the next one gets a new token', async () => {
    const before = as.clientCredentialTokens();
    upstream.refused.add(upstream.authorizations.at(-1)!);
    const client = await connectHttp(h.url);
    // The upstream's 401 is that call's error (JSON-RPC server error, as any HTTP error status of an upstream).
    await expect(client.callTool({ name: 'web__echo', arguments: {} })).rejects.toMatchObject({ code: RpcErrorCode.SERVER_ERROR });
    expect((await client.callTool({ name: 'web__echo', arguments: {} })).isError).toBeFalsy();
    await client.close();
    expect(as.clientCredentialTokens()).toBe(before + 1);
    expect(upstream.refused.has(upstream.authorizations.at(-1)!)).toBe(false);
  });
});
