import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import { FileSinkCursors } from '../../adapters/file/sink-cursors.ts';
import { WebhookNotifier } from '../../adapters/http/webhook.ts';
import { defaultConfig } from '../../src/config/load.ts';
import { gatehouseConfigSchema, type GatehouseConfig } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/log.ts';
import type { ApprovalNotice } from '../../src/protocol/approval-notice.ts';
import { auditSinkPorts } from '../../src/runtime/audit-sinks.ts';
import { createEmbeddedGateway } from '../../src/runtime/embedded.ts';
import { callerTokenExchangeFor, tokenVerifierFor, upstreamCredentialFor } from '../../src/runtime/oauth.ts';
import { listensOnLoopbackOnly, outboundGuardFor, outboundRules } from '../../src/runtime/outbound.ts';
import type { Gateway } from '../../src/runtime/gateway.ts';
import { recordingHttpUpstream } from '../fixtures/recording-http-upstream.ts';
import { connectHttp, DEFAULT_POLICY, FIXTURE_UPSTREAM, ROOT, startHarness, waitFor } from '../helpers/gateway-harness.ts';
import { startOAuthServer, UPSTREAM_CLIENT, type OAuthServer } from '../helpers/oauth-server.ts';
import { sinkConfig, sinkReceiver } from '../helpers/sink-receiver.ts';
import { webhookReceiver } from '../helpers/webhook-receiver.ts';
import { recordingLogger } from '../helpers/capturing-log.ts';
import { otlpReceiver } from '../helpers/otlp-receiver.ts';

// The SSRF guard as the composition roots wire it, over real sockets: an HTTP upstream, the approval webhook, an
// audit sink and the authorization server, each a real server on loopback that stands for "the internal network".
// The tests cannot bind beyond loopback, so "Gatehouse listens on a public address" is a listen.http that is
// configured but never bound (the gateway is driven in-process).

type Listen = GatehouseConfig['listen'];
const PUBLIC_LISTEN: Listen = { ...defaultConfig().listen, http: '0.0.0.0:8787' };
const LOOPBACK_LISTEN: Listen = { ...defaultConfig().listen, http: '127.0.0.1:8787' };

function configWith(overrides: Partial<GatehouseConfig>): GatehouseConfig {
  return defaultConfig({ dataDir: mkdtempSync(join(tmpdir(), 'gatehouse-ssrf-')), policies: [DEFAULT_POLICY], ...overrides });
}

describe('which loopback the guard allows by default', () => {
  it.each([
    ['127.0.0.1:8787', true],
    ['127.8.9.10:1', true],
    ['localhost:8787', true],
    ['[::1]:8787', true],
    [false, true],
    ['0.0.0.0:8787', false],
    ['[::]:8787', false],
    ['192.168.1.10:8787', false],
    ['gatehouse.example.com:443', false],
  ] as [string | false, boolean][])('listen.http %s: loopback allowed %s', (http, allowed) => {
    expect(listensOnLoopbackOnly({ ...LOOPBACK_LISTEN, http })).toBe(allowed);
  });

  it('outbound.allowLoopback wins over the listen address, both ways', () => {
    expect(outboundRules({ listen: PUBLIC_LISTEN, outbound: { allowPrivate: [], allowLoopback: true } }).allowLoopback).toBe(true);
    expect(outboundRules({ listen: LOOPBACK_LISTEN, outbound: { allowPrivate: [], allowLoopback: false } }).allowLoopback).toBe(false);
  });
});

describe('outbound in the config', () => {
  it.each(['10.0.0.0/8', 'fd00::/8', '::1', '[::1]', '192.168.1.5', '127.0.0.1/32', 'db.internal', 'mcp-1.corp.example.', 'localhost'])('accepts %s', (entry) => {
    expect(gatehouseConfigSchema.safeParse({ outbound: { allowPrivate: [entry] } }).success).toBe(true);
  });

  it.each(['10.0.0.0/33', 'fd00::/129', '10.0.0.0/8/1', 'http://10.0.0.1/', 'a b', '10.0.0.0/x', 'host/8', ''])('refuses %s when it loads', (entry) => {
    const parsed = gatehouseConfigSchema.safeParse({ outbound: { allowPrivate: [entry] } });
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues[0]!.path).toEqual(['outbound', 'allowPrivate', 0]);
  });

  it('defaults to nothing allowed beyond loopback-by-listen', () => {
    expect(gatehouseConfigSchema.parse({}).outbound).toEqual({ allowPrivate: [] });
  });
});

describe('an HTTP upstream behind the guard', () => {
  let upstream: Awaited<ReturnType<typeof recordingHttpUpstream>>;
  let gateway: Gateway | undefined;
  beforeAll(async () => {
    upstream = await recordingHttpUpstream();
  });
  afterEach(async () => {
    await gateway?.stop();
    gateway = undefined;
  });
  afterAll(async () => {
    await upstream.close();
  });

  async function started(config: GatehouseConfig): Promise<Gateway> {
    gateway = createEmbeddedGateway(config, silentLogger);
    await gateway.start();
    return gateway;
  }
  const web = (g: Gateway) => g.directory.get('web')!;

  it('a loopback upstream in a numeric form (0x7f000001) is down with GH_ERR_OUTBOUND_DENIED when loopback is not allowed, and is never reached', async () => {
    const port = new URL(upstream.url).port;
    const before = upstream.authorizations.length;
    const g = await started(configWith({ listen: LOOPBACK_LISTEN, outbound: { allowPrivate: [], allowLoopback: false }, upstreams: { web: { url: `http://0x7f000001:${port}/mcp`, headers: {}, timeout: 10_000 } } as GatehouseConfig['upstreams'] }));
    await waitFor(() => web(g).state === 'down', 'the upstream to be down');
    expect(web(g).failure).toMatchObject({ code: 'GH_ERR_OUTBOUND_DENIED' });
    expect(web(g).failure!.message).toContain('127.0.0.1');
    expect(upstream.authorizations.length).toBe(before);
  });

  it('a call to a refused upstream’s tool answers GH_ERR_UPSTREAM_UNAVAILABLE, saying which config key would allow it', async () => {
    const port = new URL(upstream.url).port;
    const before = upstream.authorizations.length;
    const h = await startHarness({
      outbound: { allowPrivate: [], allowLoopback: false },
      upstreams: {
        fx: { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: {}, cwd: ROOT, timeout: 60_000 },
        web: { url: `http://0x7f000001:${port}/mcp`, headers: {}, timeout: 10_000 },
      } as GatehouseConfig['upstreams'],
    });
    try {
      const client = await connectHttp(h.url);
      const result = await client.callTool({ name: 'web__echo', arguments: {} });
      expect(result.isError).toBe(true);
      expect((result._meta?.['gatehouse/error'] as { code: string }).code).toBe('GH_ERR_UPSTREAM_UNAVAILABLE');
      expect((result.content as { text: string }[])[0]!.text).toContain('outbound.allowLoopback');
      await client.close();
    } finally {
      await h.close();
    }
    expect(upstream.authorizations.length).toBe(before);
  });

  it('a loopback upstream is refused by default when Gatehouse listens beyond loopback', async () => {
    const before = upstream.authorizations.length;
    const g = await started(configWith({ listen: PUBLIC_LISTEN, upstreams: { web: { url: upstream.url, headers: {}, timeout: 10_000 } } as GatehouseConfig['upstreams'] }));
    await waitFor(() => web(g).state === 'down', 'the upstream to be down');
    expect(web(g).failure).toMatchObject({ code: 'GH_ERR_OUTBOUND_DENIED' });
    expect(upstream.authorizations.length).toBe(before);
  });

  it('an allowlisted CIDR reaches it, listening beyond loopback', async () => {
    const before = upstream.authorizations.length;
    const g = await started(configWith({ listen: PUBLIC_LISTEN, outbound: { allowPrivate: ['127.0.0.0/8'] }, upstreams: { web: { url: upstream.url, headers: {}, timeout: 10_000 } } as GatehouseConfig['upstreams'] }));
    await waitFor(() => web(g).state === 'ready', 'the upstream to be ready');
    expect(upstream.authorizations.length).toBeGreaterThan(before);
  });
});

const notice = { event: 'approval.created', text: 'approval wanted', approval: { id: 'ap-1' } } as unknown as ApprovalNotice;

describe('the approval webhook, audit sinks and the authorization server behind the guard', () => {
  it('a webhook pointed at the metadata address is refused at once, not retried, and the log says why', async () => {
    const log = recordingLogger();
    const config = configWith({ listen: LOOPBACK_LISTEN });
    // A retry would wait a minute: the warning arriving now shows there was none.
    const webhook = new WebhookNotifier({ url: 'http://169.254.169.254/latest/meta-data/', baseDelayMs: 60_000, dispatcher: outboundGuardFor(config).dispatcher() }, log);
    webhook.notify(notice);
    await waitFor(() => log.lines.some((l) => l.level === 'warn'), 'the webhook to give up');
    expect(String(log.lines.find((l) => l.level === 'warn')!.fields?.error)).toContain('metadata');
    await webhook.close();
  });

  it('a webhook on loopback is delivered when Gatehouse listens on loopback, and refused when it listens beyond', async () => {
    const receiver = await webhookReceiver();
    try {
      const delivered = new WebhookNotifier({ url: receiver.url, dispatcher: outboundGuardFor(configWith({ listen: LOOPBACK_LISTEN })).dispatcher() }, silentLogger);
      delivered.notify(notice);
      await waitFor(() => receiver.received.length === 1, 'the notice to arrive');
      const log = recordingLogger();
      const refused = new WebhookNotifier({ url: receiver.url, baseDelayMs: 60_000, dispatcher: outboundGuardFor(configWith({ listen: PUBLIC_LISTEN })).dispatcher() }, log);
      refused.notify(notice);
      await waitFor(() => log.lines.some((l) => l.level === 'warn'), 'the webhook to give up');
      expect(receiver.received.length).toBe(1);
      await Promise.all([delivered.close(), refused.close()]);
    } finally {
      await receiver.close();
    }
  });

  it('an audit sink pointed at the metadata address fails its batch with the guard’s refusal as the cause', async () => {
    const config = configWith({ listen: LOOPBACK_LISTEN, audit: { ...defaultConfig().audit, sinks: [sinkConfig('siem', 'otlp', 'http://[::ffff:169.254.169.254]:4318')] } });
    const ports = auditSinkPorts(config, new FileSinkCursors(config.dataDir), new FileAuditStore(config.dataDir, { fsync: 'off', log: silentLogger, now: Date.now }), undefined);
    const err = await ports.sinks[0]!.sender('i-1').send([], AbortSignal.timeout(5_000)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'GH_ERR_AUDIT_SINK_FAILED', cause: { code: 'GH_ERR_OUTBOUND_DENIED', data: { reason: 'metadata' } } });
  });

  it('an audit sink on an allowlisted address delivers', async () => {
    const receiver = await sinkReceiver();
    try {
      const config = configWith({ listen: PUBLIC_LISTEN, outbound: { allowPrivate: ['127.0.0.1'] }, audit: { ...defaultConfig().audit, sinks: [sinkConfig('siem', 'http', receiver.url)] } });
      const ports = auditSinkPorts(config, new FileSinkCursors(config.dataDir), new FileAuditStore(config.dataDir, { fsync: 'off', log: silentLogger, now: Date.now }), undefined);
      await ports.sinks[0]!.sender('i-1').send([], AbortSignal.timeout(5_000));
      expect(receiver.requests.length).toBe(1);
    } finally {
      await receiver.close();
    }
  });

  describe('the authorization server', () => {
    let as: OAuthServer;
    beforeAll(async () => {
      as = await startOAuthServer();
    });
    afterAll(async () => {
      await as?.close();
    });
    const oauthConfig = (listen: GatehouseConfig['listen']) =>
      configWith({ listen, auth: { apiKeys: [], oauth: { issuer: as.issuer, audience: 'https://gatehouse.example.com/mcp', algorithms: ['RS256'], jwksCooldown: 0, clockTolerance: 30_000, requiredScopes: [], claims: { principal: 'sub' } } } as unknown as GatehouseConfig['auth'] });

    it('its keys are not fetched from loopback when Gatehouse listens beyond it: the token is refused, the server never asked', async () => {
      const before = as.jwksFetches();
      const { tokenVerifier } = tokenVerifierFor(oauthConfig(PUBLIC_LISTEN));
      await expect(tokenVerifier!.verify(await as.sign({ aud: 'https://gatehouse.example.com/mcp' }))).rejects.toMatchObject({ code: 'GH_ERR_AUTH_SERVER_UNAVAILABLE' });
      expect(as.jwksFetches()).toBe(before);
      const allowed = tokenVerifierFor(oauthConfig(LOOPBACK_LISTEN)).tokenVerifier!;
      await expect(allowed.verify(await as.sign({ aud: 'https://gatehouse.example.com/mcp' }))).resolves.toMatchObject({ sub: 'alice@example.com' });
      expect(as.jwksFetches()).toBe(before + 1);
    });

    it('a redirect from the authorization server is not followed: the token is refused, the target never asked', async () => {
      let targetHits = 0;
      const target = createServer((_req, res) => void (targetHits++, res.end('{"keys":[]}')));
      await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
      const redirector = createServer((_req, res) => void res.writeHead(302, { location: `http://127.0.0.1:${(target.address() as AddressInfo).port}/jwks` }).end());
      await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
      try {
        const config = oauthConfig(LOOPBACK_LISTEN);
        config.auth!.oauth!.jwksUri = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/jwks`;
        const { tokenVerifier } = tokenVerifierFor(config);
        await expect(tokenVerifier!.verify(await as.sign({ aud: 'https://gatehouse.example.com/mcp' }))).rejects.toMatchObject({ code: 'GH_ERR_AUTH_SERVER_UNAVAILABLE' });
        expect(targetHits).toBe(0);
      } finally {
        await Promise.all([new Promise((resolve) => target.close(resolve)), new Promise((resolve) => redirector.close(resolve))]);
      }
    });

    it('an upstream’s client-credentials token is not fetched from a refused address', async () => {
      const before = as.clientCredentialTokens();
      const upstreamConfig = { url: 'https://api.example.com/mcp', oauth: { tokenEndpoint: `${as.issuer}/token`, ...UPSTREAM_CLIENT } };
      const { credential } = upstreamCredentialFor(upstreamConfig, outboundGuardFor(configWith({ listen: PUBLIC_LISTEN })));
      await expect(credential!.authorization()).rejects.toMatchObject({ code: 'GH_ERR_AUTH_SERVER_UNAVAILABLE', cause: { code: 'GH_ERR_OUTBOUND_DENIED' } });
      expect(as.clientCredentialTokens()).toBe(before);
    });

    it('a caller’s token is not exchanged (token exchange) at a refused address', async () => {
      const before = as.exchanges.length;
      const upstreams = { api: { url: 'https://api.example.com/mcp', headers: {}, timeout: 10_000, oauth: { grant: 'token-exchange', tokenEndpoint: `${as.issuer}/token`, ...UPSTREAM_CLIENT } } } as unknown as GatehouseConfig['upstreams'];
      const { tokenExchange } = callerTokenExchangeFor(configWith({ listen: PUBLIC_LISTEN, upstreams }));
      await expect(tokenExchange!.credential('api', await as.sign({ aud: 'https://gatehouse.example.com/mcp' })).authorization()).rejects.toMatchObject({ code: 'GH_ERR_AUTH_SERVER_UNAVAILABLE', cause: { code: 'GH_ERR_OUTBOUND_DENIED' } });
      expect(as.exchanges.length).toBe(before);
    });
  });
});

describe('the OTLP trace exporter behind the guard (telemetry.otlp)', () => {
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>;
  beforeAll(async () => {
    // Spans leave in batches; a short delay keeps the test from waiting out the SDK's default 5 s.
    process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
    receiver = await otlpReceiver();
  });
  afterAll(async () => {
    delete process.env.OTEL_BSP_SCHEDULE_DELAY;
    await receiver?.close();
  });

  async function callsEcho(h: Awaited<ReturnType<typeof startHarness>>): Promise<void> {
    const client = await connectHttp(h.url);
    expect((await client.callTool({ name: 'fx__echo', arguments: { text: 'traced' } })).isError).toBeFalsy();
    await client.close();
  }

  it('a collector on a refused address gets nothing: the spans are lost with the guard’s reason in the log, and calls go on', async () => {
    const log = recordingLogger();
    const before = receiver.requests.length;
    const h = await startHarness({ outbound: { allowPrivate: [], allowLoopback: false }, telemetry: { otlp: { endpoint: receiver.endpoint, headers: {} } } as never }, { log });
    try {
      await callsEcho(h);
      await waitFor(() => log.lines.some((l) => l.msg.startsWith('tracing: spans lost')), 'the lost spans in the log');
      const lost = log.lines.find((l) => l.msg.startsWith('tracing: spans lost'))!;
      expect(String(lost.fields.error)).toContain('refused to connect to 127.0.0.1');
      await callsEcho(h); // the gateway is up and serving
    } finally {
      await h.close();
    }
    expect(receiver.requests.length).toBe(before);
  });

  it('a collector on an allowed address (outbound.allowPrivate) gets the spans', async () => {
    const before = receiver.requests.length;
    const h = await startHarness({ outbound: { allowPrivate: ['127.0.0.1'], allowLoopback: false }, telemetry: { otlp: { endpoint: receiver.endpoint, headers: {} } } as never });
    try {
      await callsEcho(h);
      await waitFor(() => receiver.requests.length > before, 'an export');
    } finally {
      await h.close();
    }
  });
});
