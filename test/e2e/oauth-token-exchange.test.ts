// upstreams.<name>.oauth.grant: token-exchange (RFC 8693), embedded mode, against the test's real authorization
// server and a real HTTP upstream that records the Authorization of every request.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.ts';
import { auditOf, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { UPSTREAM_CLIENT, startOAuthServer, type OAuthServer } from '../helpers/oauth-server.ts';
import { recordingHttpUpstream } from '../fixtures/recording-http-upstream.ts';
import { recordingLogger } from '../helpers/capturing-log.ts';
import { freePort } from '../helpers/server-process.ts';

const API_KEY = 'ci-key-0123456789abcdef';
const SCOPE = 'mcp:tools';
const MODERN_META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };

type Upstream = Awaited<ReturnType<typeof recordingHttpUpstream>>;
type Answer = { result?: { isError?: boolean; content: { text: string }[]; _meta?: Record<string, { code?: string; jobId?: string }> }; error?: { message: string } };

/** Every file under `dir`, as text: what a secret must never be found in. */
function everyFileIn(dir: string): string {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isFile())
    .map((path) => readFileSync(path, 'utf8'))
    .join('\n');
}

describe('token exchange for an HTTP upstream (upstreams.<name>.oauth.grant: token-exchange)', () => {
  let as: OAuthServer;
  let upstream: Upstream;
  let h: Harness;
  let audience: string;
  const log = recordingLogger();

  beforeAll(async () => {
    [as, upstream] = await Promise.all([startOAuthServer(), recordingHttpUpstream()]);
    const port = await freePort();
    audience = `http://127.0.0.1:${port}/mcp`;
    const { auth } = configSchema.parse({ auth: { apiKeys: [{ key: API_KEY, principal: 'ci' }], oauth: { issuer: as.issuer, audience, requiredScopes: [SCOPE] } } });
    const oauth = { grant: 'token-exchange', tokenEndpoint: `${as.issuer}/token`, ...UPSTREAM_CLIENT, audience: 'recording-upstream', scope: 'echo' };
    h = await startHarness({ auth, upstreams: { web: { url: upstream.url, headers: {}, oauth, timeout: 60_000 } } as never }, { port, log });
    await waitFor(() => h.gateway.catalog.entries().some((e) => e.name === 'web__echo'), 'the HTTP upstream’s tools');
  });

  afterAll(async () => {
    await h?.close();
    await Promise.all([as?.close(), upstream?.close()]);
  });

  const callEcho = async (authorization: string): Promise<Answer> => {
    const response = await fetch(audience, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization, 'mcp-method': 'tools/call', 'mcp-name': 'web__echo' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'web__echo', arguments: {}, _meta: MODERN_META } }),
    });
    expect(response.status).toBe(200);
    return (await response.json()) as Answer;
  };
  const userToken = (sub: string) => as.sign({ aud: audience, scope: SCOPE, sub });
  const bearer = (authorization: string | undefined) => decodeJwt(authorization!.slice('Bearer '.length));

  it('calls the upstream with a token exchanged for the caller’s: the user as sub, Gatehouse as act, the upstream as aud; the caller’s own token never reaches it', async () => {
    const token = await userToken('alice@example.com');
    const answer = await callEcho(`Bearer ${token}`);
    expect(answer.result?.isError).toBeFalsy();
    expect(as.exchanges).toHaveLength(1);
    expect(as.exchanges[0].subject).toBe('alice@example.com');
    const call = upstream.calls.at(-1)!;
    expect(call.authorization).toBe(`Bearer ${as.exchanges[0].issued}`);
    expect(bearer(call.authorization)).toMatchObject({ sub: 'alice@example.com', act: { sub: UPSTREAM_CLIENT.clientId }, aud: [upstream.url, 'recording-upstream'], scope: 'echo' });
    expect(upstream.authorizations.some((a) => a?.includes(token))).toBe(false);
    // Gatehouse's own requests (the handshake, the lists) carry its own client-credentials token: no caller, no act.
    const own = upstream.authorizations.filter((a) => a !== call.authorization);
    expect(own.length).toBeGreaterThan(0);
    for (const authorization of own) {
      expect(bearer(authorization)).toMatchObject({ sub: UPSTREAM_CLIENT.clientId, aud: upstream.url });
      expect(bearer(authorization).act).toBeUndefined();
    }
  });

  it('keeps an exchanged token per caller token until its expiry: the same token again costs no exchange, another caller’s gets its own', async () => {
    const token = await userToken('bob@example.com');
    const before = as.exchanges.length;
    for (let i = 0; i < 3; i++) expect((await callEcho(`Bearer ${token}`)).result?.isError).toBeFalsy();
    expect(as.exchanges.length).toBe(before + 1);
    const carol = await userToken('carol@example.com');
    expect((await callEcho(`Bearer ${carol}`)).result?.isError).toBeFalsy();
    expect(as.exchanges.length).toBe(before + 2);
    expect(bearer(upstream.calls.at(-1)!.authorization).sub).toBe('carol@example.com');
  });

  it('drops an exchanged token the upstream answers 401: that call fails, the next exchanges again', async () => {
    const token = await userToken('dave@example.com');
    expect((await callEcho(`Bearer ${token}`)).result?.isError).toBeFalsy();
    const exchanged = upstream.calls.at(-1)!.authorization!;
    upstream.refused.add(exchanged);
    const before = as.exchanges.length;
    const refused = await callEcho(`Bearer ${token}`);
    expect(refused.error ?? refused.result?.isError).toBeTruthy();
    expect((await callEcho(`Bearer ${token}`)).result?.isError).toBeFalsy();
    expect(as.exchanges.length).toBe(before + 1);
    expect(upstream.calls.at(-1)!.authorization).not.toBe(exchanged);
    expect(bearer(upstream.calls.at(-1)!.authorization).sub).toBe('dave@example.com');
  });

  it('refuses a caller with an API key (no token to exchange) with GH_ERR_CALLER_TOKEN_REQUIRED, before the upstream, and audits it as denied', async () => {
    const calls = upstream.calls.length;
    const answer = await callEcho(`Bearer ${API_KEY}`);
    expect(answer.result?.isError).toBe(true);
    expect(answer.result?._meta?.['gatehouse/error']?.code).toBe('GH_ERR_CALLER_TOKEN_REQUIRED');
    expect(upstream.calls.length).toBe(calls);
    const jobId = (answer.result?._meta?.['gatehouse/job'] as { jobId?: string } | undefined)?.jobId;
    await waitFor(async () => (await auditOf(h.dataDir, 'default')).some((r) => r.jobId === jobId && r.type === 'job.denied'), 'the refusal in the audit');
    const records = (await auditOf(h.dataDir, 'default')).filter((r) => r.jobId === jobId);
    expect(records.find((r) => r.type === 'job.submitted')?.actor).toBe('ci');
    expect(records.find((r) => r.type === 'job.denied')?.data.errorCode).toBe('GH_ERR_CALLER_TOKEN_REQUIRED');
  });

  it('never writes a caller’s token, an exchanged token or the client secret to the log, the audit or the data dir', async () => {
    const token = await userToken('erin@example.com');
    const answer = await callEcho(`Bearer ${token}`);
    expect(answer.result?.isError).toBeFalsy();
    const jobId = (answer.result?._meta?.['gatehouse/job'] as { jobId?: string } | undefined)?.jobId;
    await waitFor(async () => (await auditOf(h.dataDir, 'default')).some((r) => r.jobId === jobId && r.type === 'job.succeeded'), 'the call in the audit');
    const secrets = [token, ...as.exchanges.map((e) => e.issued), UPSTREAM_CLIENT.clientSecret, Buffer.from(`${UPSTREAM_CLIENT.clientId}:${UPSTREAM_CLIENT.clientSecret}`).toString('base64')];
    const places = { log: log.text(), dataDir: everyFileIn(h.dataDir) };
    expect(places.dataDir.length).toBeGreaterThan(0);
    for (const secret of secrets) for (const [where, text] of Object.entries(places)) expect(text.includes(secret), `${where} holds a secret`).toBe(false);
  });
});
