// auth.oauth in distributed mode, with real processes: NATS and Redis started here, two gateway replicas and a
// worker. Each replica checks tokens itself (its own key cache), and the call a token makes on either replica is
// audited, in the one chain in Redis, as the token's principal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/gateway-harness.ts';
import { clusterAvailable, startCluster, waitForLiveWorkers, type Cluster } from '../helpers/distributed.ts';
import { startOAuthServer, type OAuthServer } from '../helpers/oauth-server.ts';

const available = clusterAvailable();
const AUDIENCE = 'https://gatehouse.example.com/mcp';
const MODERN_META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };

describe.skipIf(!available)('auth.oauth in distributed mode', () => {
  let as: OAuthServer;
  let cluster: Cluster;

  beforeAll(async () => {
    as = await startOAuthServer();
    cluster = await startCluster({ gateways: 2, workers: 1, extraConfig: [`auth: { oauth: { issuer: ${JSON.stringify(as.issuer)}, audience: ${JSON.stringify(AUDIENCE)}, requiredScopes: [mcp:tools], claims: { roles: roles } } }`] });
    const token = await as.sign({ aud: AUDIENCE, scope: 'mcp:tools' });
    for (const gateway of cluster.gateways) await waitForLiveWorkers(gateway, 1, `Bearer ${token}`);
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    await as?.close();
  });

  const callEcho = (url: string, authorization?: string) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-method': 'tools/call', 'mcp-name': 'fx__echo', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'fx__echo', arguments: { text: 'hi' }, _meta: MODERN_META } }),
    });

  it('every replica takes a valid token, refuses one for another resource, and audits the call as the token’s principal', async () => {
    for (const [i, gateway] of cluster.gateways.entries()) {
      const refused = await callEcho(gateway.url, `Bearer ${await as.sign({ aud: 'https://other.example.com/mcp', scope: 'mcp:tools' })}`);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBe('Bearer resource_metadata="https://gatehouse.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token"');
      const response = await callEcho(gateway.url, `Bearer ${await as.sign({ aud: AUDIENCE, scope: 'mcp:tools', sub: `user-${i}` })}`);
      expect(response.status).toBe(200);
      const body = (await response.json()) as { result?: { isError?: boolean } };
      expect(body.result?.isError).toBeFalsy();
    }
    // The audit API of one replica, read with a viewer's token, shows both replicas' calls under their principals.
    const viewer = `Bearer ${await as.sign({ aud: AUDIENCE, scope: 'mcp:tools', roles: ['viewer'] })}`;
    const base = cluster.gateways[0].url.replace(/\/mcp$/, '');
    const principals = async () => {
      const response = await fetch(`${base}/api/audit?outcome=succeeded`, { headers: { authorization: viewer } });
      return ((await response.json()) as { calls: { principal: string }[] }).calls.map((c) => c.principal).sort();
    };
    await waitFor(async () => (await principals()).length === 2, 'both calls in the audit');
    expect(await principals()).toEqual(['user-0', 'user-1']);
    expect((await fetch(`${base}/api/audit`, { headers: { authorization: `Bearer ${await as.sign({ aud: AUDIENCE, scope: 'mcp:tools' })}` } })).status).toBe(403);
  });
});
