// HTTP upstreams hosted by a worker pool, on a real cluster (NATS with JetStream, Redis with an append-only file,
// two `gatehouse start` replicas and a `gatehouse worker`): token exchange, where the replica that decides a call
// exchanges the caller's token and the worker gets only the exchanged token; and the SSRF guard, applied by the
// worker that connects, its refusal named by the replicas.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterAvailable, startCluster, startReplicaInProcess, waitForLiveWorkers, type Cluster } from '../helpers/distributed.ts';
import { loadConfig } from '../../src/config/load.ts';
import { UPSTREAM_CLIENT, startOAuthServer, type OAuthServer } from '../helpers/oauth-server.ts';
import { recordingHttpUpstream } from '../fixtures/recording-http-upstream.ts';

const available = clusterAvailable();
const AUDIENCE = 'https://gatehouse.example.com/mcp';
const MODERN_META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };

type Answer = { result?: { isError?: boolean; content: { text: string }[]; _meta?: Record<string, { code?: string }> } };

/** Every file under `dir`, raw: JetStream's and Redis's own files are searched for secrets as bytes. */
function filesUnder(dir: string): Buffer[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isFile())
    .map((path) => readFileSync(path));
}

describe.skipIf(!available)('HTTP upstreams hosted by a worker pool', () => {
  let as: OAuthServer;
  let upstream: Awaited<ReturnType<typeof recordingHttpUpstream>>;
  /** A server on 127.0.0.2, a loopback address the config does not allow: it must never be asked anything. */
  let internal: Server;
  let internalRequests = 0;
  let cluster: Cluster;
  let viewerToken: string;

  beforeAll(async () => {
    [as, upstream] = await Promise.all([startOAuthServer(), recordingHttpUpstream()]);
    internal = createServer((_req, res) => (internalRequests++, res.writeHead(500).end()));
    await new Promise<void>((resolve) => internal.listen(0, '127.0.0.2', resolve));
    const internalUrl = `http://127.0.0.2:${(internal.address() as AddressInfo).port}/mcp`;
    const oauth = `{ grant: token-exchange, tokenEndpoint: ${JSON.stringify(`${as.issuer}/token`)}, clientId: ${UPSTREAM_CLIENT.clientId}, clientSecret: ${UPSTREAM_CLIENT.clientSecret} }`;
    cluster = await startCluster({
      gateways: 2,
      workers: 1,
      jetstream: true,
      persistentRedis: true,
      extraUpstreams: [`web: { url: ${JSON.stringify(upstream.url)}, pool: tools, oauth: ${oauth} }`, `internal: { url: ${JSON.stringify(internalUrl)}, pool: tools }`],
      extraConfig: [
        `auth: { oauth: { issuer: ${JSON.stringify(as.issuer)}, audience: ${JSON.stringify(AUDIENCE)}, requiredScopes: [mcp:tools], claims: { roles: roles } } }`,
        // Loopback only by name: 127.0.0.1 (the upstream, the authorization server) is allowed, 127.0.0.2 is not.
        'outbound: { allowLoopback: false, allowPrivate: ["127.0.0.1"] }',
      ],
    });
    viewerToken = await as.sign({ aud: AUDIENCE, scope: 'mcp:tools', roles: ['viewer'] });
    for (const gateway of cluster.gateways) await waitForLiveWorkers(gateway, 1, `Bearer ${viewerToken}`);
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    await Promise.all([as?.close(), upstream?.close(), new Promise((resolve) => internal?.close(resolve))]);
  });

  const call = async (url: string, name: string, token: string): Promise<Answer> => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, 'mcp-method': 'tools/call', 'mcp-name': name },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: {}, _meta: MODERN_META } }),
    });
    expect(response.status).toBe(200);
    return (await response.json()) as Answer;
  };

  it('token exchange: the replica that decides a call exchanges the caller’s token (once per token: the same token on two replicas is two exchanges, however many calls), the worker calls with the exchanged token alone, and no token or secret is in JetStream, Redis or any process’s output', async () => {
    const token = await as.sign({ aud: AUDIENCE, scope: 'mcp:tools', sub: 'alice@example.com' });
    const before = as.exchanges.length;
    for (const [i, gateway] of cluster.gateways.entries()) {
      for (let n = 0; n < 2; n++) {
        const answer = await call(gateway.url, 'web__echo', token);
        expect(answer.result?.isError, JSON.stringify(answer)).toBeFalsy();
        const seen = upstream.calls.at(-1)!;
        expect(decodeJwt(seen.authorization!.slice('Bearer '.length))).toMatchObject({ sub: 'alice@example.com', act: { sub: UPSTREAM_CLIENT.clientId }, aud: upstream.url });
      }
      // One worker runs every call: were it the one exchanging, the second replica's calls would cost none.
      expect(as.exchanges.length).toBe(before + i + 1);
    }
    expect(upstream.authorizations.some((a) => a?.includes(token))).toBe(false);
    const tokens = [token];

    const secrets = [...tokens, ...as.exchanges.map((e) => e.issued), UPSTREAM_CLIENT.clientSecret];
    // What the servers persist (JetStream's job queue, Redis's append-only file) and what every process printed.
    const places: [string, Buffer[]][] = [
      ['JetStream', filesUnder(cluster.nats.dir)],
      ['Redis', filesUnder(cluster.redis.dir)],
      ['output', [...cluster.gateways, ...cluster.workers].map((p) => Buffer.from(p.output()))],
    ];
    expect(places[0][1].some((file) => file.includes('job.tools'))).toBe(true); // the jobs did go through JetStream
    expect(places[1][1].some((file) => file.includes('ctx:'))).toBe(true); // and their contexts through Redis
    for (const secret of secrets) for (const [where, files] of places) expect(files.some((file) => file.includes(secret)), `${where} holds a secret`).toBe(false);
  });

  it('the SSRF guard: the worker that would connect refuses an upstream on a refused address with GH_ERR_OUTBOUND_DENIED, the replicas’ banner and directory name the same coded reason, and it is never reached; 127.0.0.1, allowed by outbound.allowPrivate, is', async () => {
    for (const gateway of cluster.gateways) {
      const banner = gateway.output();
      expect(banner).toMatch(/internal \(down: refused to connect to 127\.0\.0\.2: .* a loopback address; allow it with outbound\.allowLoopback or outbound\.allowPrivate\)/);
      expect(banner).toMatch(/web \(ready\)/);
      const answer = await call(gateway.url, 'internal__echo', viewerToken);
      expect(answer.result?.isError).toBe(true);
      expect(answer.result?.content[0]!.text).toContain('outbound.allowLoopback');
    }
    expect(internalRequests).toBe(0);
    // The refusal is the worker's (it is the process that would connect), and the replicas learn it, code and all.
    expect(cluster.workers[0].output()).toContain('upstream internal is not available: refused to connect to 127.0.0.2');
    const replica = await startReplicaInProcess(loadConfig(cluster.config).config);
    try {
      const internal = replica.gateway.directory.get('internal')!;
      expect(internal.state).toBe('down');
      expect(internal.failure).toMatchObject({ code: 'GH_ERR_OUTBOUND_DENIED', message: expect.stringContaining('a loopback address') });
    } finally {
      await replica.close();
    }
  });
});
