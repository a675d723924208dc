import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, exportJWK, exportSPKI, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/** The client Gatehouse introspects with (auth.oauth.introspection). */
export const INTROSPECTION_CLIENT = { clientId: 'gatehouse', clientSecret: 'introspection-secret' };
/** The confidential client Gatehouse gets its own upstream tokens as (client credentials grant). */
export const UPSTREAM_CLIENT = { clientId: 'gatehouse-upstream', clientSecret: 'upstream-secret' };
/** The user every authorization code is for: /authorize approves at once, as this user. */
export const SIGNED_IN_USER = 'alice@example.com';

interface SigningKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

interface PendingCode {
  clientId: string;
  redirectUri: string;
  challenge: string;
  resource: string | undefined;
  scope: string | undefined;
}

export interface OAuthServer {
  issuer: string;
  /** How many times the JWKS was fetched. */
  jwksFetches(): number;
  /** How many introspection requests were answered. */
  introspections(): number;
  /** How many client credentials tokens were issued. */
  clientCredentialTokens(): number;
  /** The token exchanges (RFC 8693) answered with a token: the subject token's `sub` and the token issued. */
  exchanges: { subject: string; issued: string }[];
  /** Clients registered through /register (RFC 7591). */
  registered: Record<string, unknown>[];
  /** Publishes a second key (ES256) and signs everything from now on with it; the first stays published. */
  rotate(): Promise<void>;
  /** A JWT access token signed with the current key: iss, sub, aud, iat and exp (an hour) filled in unless given. */
  sign(claims?: JWTPayload, header?: { kid?: string; typ?: string }): Promise<string>;
  /** An opaque token whose introspection answers `claims` (with `active: true` unless given). */
  opaque(claims: Record<string, unknown>): string;
  /** The first key's public key as PEM: what an HS256 forger would use as the HMAC secret. */
  publicKeyPem(): Promise<string>;
  /** The extra claims put into tokens /token issues (roles, tenant …). */
  tokenClaims: JWTPayload;
  /** The `expires_in` of exchanged tokens (seconds, default 3600). */
  exchangedLifetime: number;
  close(): Promise<void>;
}

/**
 * A small OAuth 2.1 authorization server on 127.0.0.1 port 0, built on jose, with what an MCP client's flow needs:
 * metadata (RFC 8414), a JWKS that can rotate, dynamic client registration (RFC 7591), /authorize that approves at
 * once and redirects with a code (PKCE S256 required), /token (authorization_code with PKCE; client_credentials
 * and token exchange, RFC 8693, for UPSTREAM_CLIENT; `resource` becomes `aud`, RFC 8707) and /introspect (RFC 7662).
 * A token exchange takes a subject token this server signed and unexpired, and issues one for the resource whose
 * `sub` is the subject's and whose `act` names the client that asked (RFC 8693 §4.1).
 */
export async function startOAuthServer(): Promise<OAuthServer> {
  const keys: SigningKey[] = [await signingKey('k1', 'RS256')];
  let current = keys[0];
  let jwksFetches = 0;
  let introspections = 0;
  let clientCredentialTokens = 0;
  const exchanges: { subject: string; issued: string }[] = [];
  const registered: Record<string, unknown>[] = [];
  const codes = new Map<string, PendingCode>();
  const opaque = new Map<string, Record<string, unknown>>();
  let issuer = '';

  const sign = (claims: JWTPayload = {}, header: { kid?: string; typ?: string } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: issuer, sub: SIGNED_IN_USER, iat: now, exp: now + 3600, ...claims })
      .setProtectedHeader({ alg: current.alg, kid: header.kid ?? current.kid, typ: header.typ ?? 'at+jwt' })
      .sign(current.privateKey);
  };

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: Error) => json(res, 500, { error: 'server_error', error_description: err.message }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', issuer);
    const body = req.method === 'POST' ? await readBody(req) : '';
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /.well-known/oauth-authorization-server':
        return json(res, 200, {
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          registration_endpoint: `${issuer}/register`,
          introspection_endpoint: `${issuer}/introspect`,
          jwks_uri: `${issuer}/jwks`,
          response_types_supported: ['code'],
          grant_types_supported: ['authorization_code'],
          code_challenge_methods_supported: ['S256'],
          token_endpoint_auth_methods_supported: ['none'],
        });
      case 'GET /jwks':
        jwksFetches++;
        return json(res, 200, { keys: keys.map((k) => k.jwk) });
      case 'POST /register': {
        const metadata = JSON.parse(body) as Record<string, unknown>;
        const client = { ...metadata, client_id: `client-${randomBytes(6).toString('hex')}`, client_id_issued_at: Math.floor(Date.now() / 1000), token_endpoint_auth_method: 'none' };
        registered.push(client);
        return json(res, 201, client);
      }
      case 'GET /authorize': {
        const q = url.searchParams;
        const client = registered.find((c) => c.client_id === q.get('client_id'));
        const redirectUri = q.get('redirect_uri') ?? '';
        if (!client || !(client.redirect_uris as string[]).includes(redirectUri)) return json(res, 400, { error: 'invalid_request', error_description: 'unknown client or redirect_uri' });
        if (q.get('response_type') !== 'code' || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) return json(res, 400, { error: 'invalid_request', error_description: 'PKCE S256 is required' });
        const code = randomBytes(16).toString('base64url');
        codes.set(code, { clientId: String(client.client_id), redirectUri, challenge: q.get('code_challenge')!, resource: q.get('resource') ?? undefined, scope: q.get('scope') ?? undefined });
        const back = new URL(redirectUri);
        back.searchParams.set('code', code);
        if (q.get('state')) back.searchParams.set('state', q.get('state')!);
        back.searchParams.set('iss', issuer);
        res.writeHead(302, { location: back.toString() }).end();
        return;
      }
      case 'POST /token': {
        const form = new URLSearchParams(body);
        if (form.get('grant_type') === 'client_credentials') {
          const expected = `Basic ${Buffer.from(`${UPSTREAM_CLIENT.clientId}:${UPSTREAM_CLIENT.clientSecret}`).toString('base64')}`;
          if (req.headers.authorization !== expected) return json(res, 401, { error: 'invalid_client' });
          clientCredentialTokens++;
          const token = await sign({ sub: UPSTREAM_CLIENT.clientId, aud: form.get('resource') ?? undefined, scope: form.get('scope') ?? '', client_id: UPSTREAM_CLIENT.clientId, jti: randomBytes(8).toString('hex') });
          return json(res, 200, { access_token: token, token_type: 'Bearer', expires_in: 3600 });
        }
        if (form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:token-exchange') {
          const expected = `Basic ${Buffer.from(`${UPSTREAM_CLIENT.clientId}:${UPSTREAM_CLIENT.clientSecret}`).toString('base64')}`;
          if (req.headers.authorization !== expected) return json(res, 401, { error: 'invalid_client' });
          if (form.get('subject_token_type') !== 'urn:ietf:params:oauth:token-type:access_token') return json(res, 400, { error: 'invalid_request', error_description: 'subject_token_type must be access_token' });
          let subject: JWTPayload;
          try {
            subject = (await jwtVerify(form.get('subject_token') ?? '', createLocalJWKSet({ keys: keys.map((k) => k.jwk) }), { issuer })).payload;
          } catch {
            return json(res, 400, { error: 'invalid_grant', error_description: 'the subject token is not valid' });
          }
          const resource = form.get('resource');
          if (!resource) return json(res, 400, { error: 'invalid_target', error_description: 'a resource indicator is required' });
          const audience = form.get('audience');
          const issued = await sign({ sub: subject.sub, aud: audience ? [resource, audience] : resource, scope: form.get('scope') ?? '', client_id: UPSTREAM_CLIENT.clientId, act: { sub: UPSTREAM_CLIENT.clientId }, jti: randomBytes(8).toString('hex') });
          exchanges.push({ subject: String(subject.sub), issued });
          return json(res, 200, { access_token: issued, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: server_.exchangedLifetime });
        }
        if (form.get('grant_type') !== 'authorization_code') return json(res, 400, { error: 'unsupported_grant_type' });
        const pending = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        if (!pending || pending.clientId !== form.get('client_id') || pending.redirectUri !== form.get('redirect_uri')) return json(res, 400, { error: 'invalid_grant' });
        const verifier = form.get('code_verifier') ?? '';
        if (createHash('sha256').update(verifier).digest('base64url') !== pending.challenge) return json(res, 400, { error: 'invalid_grant', error_description: 'PKCE verification failed' });
        const resource = form.get('resource') ?? pending.resource;
        if (!resource) return json(res, 400, { error: 'invalid_target', error_description: 'a resource indicator is required' });
        const scope = pending.scope ?? '';
        const token = await sign({ ...server_.tokenClaims, aud: resource, scope, client_id: pending.clientId });
        return json(res, 200, { access_token: token, token_type: 'Bearer', expires_in: 3600, scope });
      }
      case 'POST /introspect': {
        const expected = `Basic ${Buffer.from(`${INTROSPECTION_CLIENT.clientId}:${INTROSPECTION_CLIENT.clientSecret}`).toString('base64')}`;
        if (req.headers.authorization !== expected) return json(res, 401, { error: 'invalid_client' });
        introspections++;
        const claims = opaque.get(new URLSearchParams(body).get('token') ?? '');
        return json(res, 200, claims ? { active: true, ...claims } : { active: false });
      }
      default:
        return json(res, 404, { error: 'not_found' });
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const server_: OAuthServer = {
    issuer,
    jwksFetches: () => jwksFetches,
    introspections: () => introspections,
    clientCredentialTokens: () => clientCredentialTokens,
    exchanges,
    registered,
    rotate: async () => {
      current = await signingKey('k2', 'ES256');
      keys.push(current);
    },
    sign,
    publicKeyPem: () => exportSPKI(keys[0].publicKey),
    opaque: (claims) => {
      const token = randomBytes(24).toString('base64url');
      opaque.set(token, claims);
      return token;
    },
    tokenClaims: {},
    exchangedLifetime: 3600,
    close: () => new Promise((resolve) => server.close(() => resolve()).closeAllConnections()),
  };
  return server_;
}

async function signingKey(kid: string, alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}
