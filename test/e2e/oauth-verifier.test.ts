import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier, type OAuthVerifierOptions } from '../../adapters/oauth/token-verifier.ts';
import { INTROSPECTION_CLIENT, startOAuthServer, type OAuthServer } from '../helpers/oauth-server.ts';
import { coded } from '../helpers/coded-errors.ts';
import { OAuthResource } from '../../src/api/oauth-resource.ts';

const AUDIENCE = 'https://gatehouse.example.com/mcp';

/** The token verifier (adapters/oauth/) against the real authorization server of the tests, over HTTP. */
describe('OAuth token verifier', () => {
  let as: OAuthServer;
  const options = (more: Partial<OAuthVerifierOptions> = {}): OAuthVerifierOptions => ({
    issuer: as.issuer,
    audience: AUDIENCE,
    algorithms: ['RS256', 'ES256'],
    clockToleranceMs: 30_000,
    jwksCooldownMs: 60_000,
    ...more,
  });

  beforeAll(async () => {
    as = await startOAuthServer();
  });

  afterAll(async () => {
    await as?.close();
  });

  it('finds the keys through the issuer’s metadata, and fetches them again for an unknown kid at most once per cooldown', async () => {
    const verifier = createTokenVerifier(options());
    const before = as.jwksFetches();
    await expect(verifier.verify(await as.sign({ aud: AUDIENCE }))).resolves.toMatchObject({ sub: 'alice@example.com' });
    expect(as.jwksFetches()).toBe(before + 1);
    const { privateKey } = await generateKeyPair('RS256');
    for (let i = 0; i < 5; i++) {
      const forged = await new SignJWT({ iss: as.issuer, aud: AUDIENCE, sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 60 }).setProtectedHeader({ alg: 'RS256', kid: `unknown-${i}` }).sign(privateKey);
      await expect(verifier.verify(forged)).rejects.toEqual(coded('GH_ERR_UNAUTHORIZED'));
    }
    expect(as.jwksFetches()).toBe(before + 1);
  });

  it('fails closed with GH_ERR_AUTH_SERVER_UNAVAILABLE when the issuer cannot be reached', async () => {
    const verifier = createTokenVerifier(options({ issuer: 'http://127.0.0.1:9', jwksCooldownMs: 0 }));
    await expect(verifier.verify(await as.sign({ aud: AUDIENCE }))).rejects.toEqual(coded('GH_ERR_AUTH_SERVER_UNAVAILABLE'));
  });

  it('the resource answers such a token 503, retryable, rather than letting it through', async () => {
    const resource = new OAuthResource(createTokenVerifier(options({ issuer: 'http://127.0.0.1:9', jwksCooldownMs: 0 })), { issuer: 'http://127.0.0.1:9', audience: AUDIENCE, requiredScopes: [], claims: { principal: 'sub' } });
    expect((await resource.admit(await as.sign({ aud: AUDIENCE }))).refused).toMatchObject({ status: 503, code: 'GH_ERR_AUTH_SERVER_UNAVAILABLE' });
  });

  it('maps the claims: the principal and tenant claims name the caller; a token without the tenant claim is refused', async () => {
    const resource = new OAuthResource(createTokenVerifier(options()), { issuer: as.issuer, audience: AUDIENCE, requiredScopes: [], claims: { principal: 'email', tenant: 'org', roles: 'groups' } });
    const admitted = await resource.admit(await as.sign({ aud: AUDIENCE, email: 'carol@example.com', org: 'acme', groups: 'approver engineering' }));
    expect(admitted.identity).toEqual({ caller: { principal: 'carol@example.com', tenant: 'acme' }, roles: ['approver'] });
    expect((await resource.admit(await as.sign({ aud: AUDIENCE, email: 'carol@example.com' }))).refused).toMatchObject({ status: 401, code: 'GH_ERR_UNAUTHORIZED' });
    expect((await resource.admit(await as.sign({ aud: AUDIENCE, org: 'acme' }))).refused).toMatchObject({ status: 401, code: 'GH_ERR_UNAUTHORIZED' });
  });

  it('refuses an opaque token when introspection is not configured', async () => {
    const verifier = createTokenVerifier(options());
    await expect(verifier.verify(as.opaque({ sub: 'bob', aud: AUDIENCE }))).rejects.toEqual(coded('GH_ERR_UNAUTHORIZED'));
  });

  it('introspects an opaque token once, then answers from a short cache keyed by its digest; an expired one is refused', async () => {
    const verifier = createTokenVerifier(options({ introspection: { endpoint: `${as.issuer}/introspect`, ...INTROSPECTION_CLIENT } }));
    const token = as.opaque({ sub: 'bob', aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3600 });
    const before = as.introspections();
    await expect(verifier.verify(token)).resolves.toMatchObject({ active: true, sub: 'bob' });
    await expect(verifier.verify(token)).resolves.toMatchObject({ sub: 'bob' });
    expect(as.introspections()).toBe(before + 1);
    const expired = as.opaque({ sub: 'bob', aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) - 3600 });
    await expect(verifier.verify(expired)).rejects.toEqual(coded('GH_ERR_UNAUTHORIZED'));
  });
});
