import { readFileSync } from 'node:fs';
import { createServer, get as httpGet, type Agent, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { classifyAddress } from '../../adapters/http/address-class.ts';
import { OutboundGuard, type OutboundRules } from '../../adapters/http/outbound-guard.ts';
import { isGatewayError } from '../../src/errors.ts';

// The SSRF guard over real sockets: a real HTTP server on loopback stands for "the internal network", and a
// resolver the test controls plays a DNS server (including one that changes its answer between two lookups).

const DENY_ALL: OutboundRules = { allowPrivate: [], allowLoopback: false };

describe('classifyAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    // IPv6 forms that carry an IPv4 address are classed by it.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['0:0:0:0:0:ffff:a9fe:a9fe', 'metadata'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    ['2002:7f00:1::', 'loopback'],
    ['2002:c0a8:101::1', 'private'],
  ])('%s is %s', (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });

  it.each(['8.8.8.8', '1.1.1.1', '100.63.255.255', '100.128.0.0', '172.32.0.1', '169.253.255.255', '2606:4700::1111', '::ffff:8.8.8.8', '2002:808:808::1', '64:ff9b::808:808'])('%s is public', (address) => {
    expect(classifyAddress(address)).toBeUndefined();
  });
});

describe('OutboundGuard.check', () => {
  const publicResolver = async () => ['93.184.215.14'];

  it.each([
    // Numeric tricks: the WHATWG parser writes each as the dotted address it reaches.
    ['http://2130706433/', 'loopback'],
    ['http://0x7f.1/', 'loopback'],
    ['http://0177.0.0.1/', 'loopback'],
    ['http://127.1/', 'loopback'],
    ['http://0x7f000001:8080/', 'loopback'],
    ['http://127.0.0.1./', 'loopback'],
    ['http://[::1]/', 'loopback'],
    ['http://[::ffff:127.0.0.1]/', 'loopback'],
    ['http://[::ffff:a9fe:a9fe]/latest/meta-data/', 'metadata'],
    ['http://169.254.169.254/latest/meta-data/', 'metadata'],
    ['http://0xa9fea9fe/', 'metadata'],
    ['http://[fd00:ec2::254]/', 'metadata'],
    ['http://0/', 'unspecified'],
    ['http://[::]/', 'unspecified'],
    ['http://10.0.0.1/', 'private'],
    ['http://[fe80::1]/', 'link-local'],
  ])('%s is refused (%s)', async (url, reason) => {
    const err = await new OutboundGuard(DENY_ALL, publicResolver).check(url).catch((e: unknown) => e);
    expect(isGatewayError(err, 'GH_ERR_OUTBOUND_DENIED')).toBe(true);
    expect((err as { data: { reason: string } }).data.reason).toBe(reason);
  });

  it.each(['http://metadata.google.internal/computeMetadata/v1/', 'http://METADATA.google.internal./', 'http://metadata/'])('the metadata name %s is refused before any lookup', async (url) => {
    const asked: string[] = [];
    const guard = new OutboundGuard(DENY_ALL, async (h) => (asked.push(h), ['93.184.215.14']));
    await expect(guard.check(url)).rejects.toMatchObject({ code: 'GH_ERR_OUTBOUND_DENIED', data: { reason: 'metadata' } });
    expect(asked).toEqual([]);
  });

  it('a name is refused when any of its addresses is private, and names host, address and the config key', async () => {
    const guard = new OutboundGuard(DENY_ALL, async () => ['93.184.215.14', '10.0.0.7']);
    await expect(guard.check('https://api.example.com/mcp')).rejects.toMatchObject({
      code: 'GH_ERR_OUTBOUND_DENIED',
      data: { host: 'api.example.com', address: '10.0.0.7', reason: 'private', allowWith: 'outbound.allowPrivate' },
    });
  });

  it('a public name passes', async () => {
    await expect(new OutboundGuard(DENY_ALL, publicResolver).check('https://api.example.com/')).resolves.toEqual(['93.184.215.14']);
  });

  it('allowPrivate admits a CIDR block, an address and a host name; loopback follows allowLoopback', async () => {
    const guard = new OutboundGuard({ allowPrivate: ['10.0.0.0/8', 'fd12::/16', '192.168.1.5', 'db.internal'], allowLoopback: true }, async (h) => (h === 'db.internal' ? ['172.20.0.3'] : ['10.9.9.9']));
    await expect(guard.check('http://10.200.0.1/')).resolves.toEqual(['10.200.0.1']);
    await expect(guard.check('http://[fd12::9]/')).resolves.toEqual(['fd12::9']);
    await expect(guard.check('http://192.168.1.5/')).resolves.toEqual(['192.168.1.5']);
    await expect(guard.check('http://db.internal/')).resolves.toEqual(['172.20.0.3']);
    await expect(guard.check('http://svc.corp/')).resolves.toEqual(['10.9.9.9']);
    await expect(guard.check('http://127.0.0.1:9/')).resolves.toEqual(['127.0.0.1']);
    await expect(guard.check('http://192.168.1.6/')).rejects.toMatchObject({ code: 'GH_ERR_OUTBOUND_DENIED' });
  });

  it('a metadata address is allowed only by naming it, never by a block that holds it', async () => {
    const wide = new OutboundGuard({ allowPrivate: ['169.254.0.0/16', '100.64.0.0/10'], allowLoopback: true });
    await expect(wide.check('http://169.254.1.1/')).resolves.toEqual(['169.254.1.1']);
    await expect(wide.check('http://169.254.169.254/')).rejects.toMatchObject({ data: { reason: 'metadata' } });
    await expect(wide.check('http://100.100.100.200/')).rejects.toMatchObject({ data: { reason: 'metadata' } });
    const named = new OutboundGuard({ allowPrivate: ['169.254.169.254'], allowLoopback: false });
    await expect(named.check('http://169.254.169.254/')).resolves.toEqual(['169.254.169.254']);
  });
});

describe('OutboundGuard.dispatcher, and nodeAgent for clients that take a Node agent (real sockets)', () => {
  let server: Server;
  let hits = 0;
  afterEach(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function internalService(): Promise<number> {
    hits = 0;
    server = createServer((_req, res) => {
      hits++;
      res.end('internal secret');
    });
    server.on('connection', () => hits++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  it('DNS rebinding: a name checked as public that answers loopback at connect time never reaches loopback', async () => {
    const port = await internalService();
    let lookups = 0;
    // The attacker's DNS: a public address for the first question, loopback for every later one.
    const guard = new OutboundGuard(DENY_ALL, async () => (lookups++ === 0 ? ['93.184.215.14'] : ['127.0.0.1']));
    const url = `http://rebind.example:${port}/`;
    await expect(guard.check(url)).resolves.toEqual(['93.184.215.14']);
    const dispatcher = guard.dispatcher();
    const err = await request(url, { dispatcher }).catch((e: unknown) => e);
    await dispatcher.close();
    expect(isGatewayError(err, 'GH_ERR_OUTBOUND_DENIED')).toBe(true);
    expect(lookups).toBe(2);
    expect(hits).toBe(0);
  });

  it('the connection goes to the address that was checked, not to a second answer for the name', async () => {
    const port = await internalService();
    const asked: string[] = [];
    const guard = new OutboundGuard({ allowPrivate: ['pinned.internal'], allowLoopback: false }, async (h) => (asked.push(h), ['127.0.0.1']));
    const dispatcher = guard.dispatcher();
    const response = await request(`http://pinned.internal:${port}/`, { dispatcher });
    expect(await response.body.text()).toBe('internal secret');
    await dispatcher.close();
    expect(asked).toEqual(['pinned.internal']);
  });

  it('every checked address is tried: a name that lists ::1 first reaches a server on 127.0.0.1 only', async () => {
    const port = await internalService();
    const guard = new OutboundGuard({ allowPrivate: [], allowLoopback: true }, async () => ['::1', '127.0.0.1']);
    const dispatcher = guard.dispatcher();
    const response = await request(`http://both.internal:${port}/`, { dispatcher });
    expect(await response.body.text()).toBe('internal secret');
    await dispatcher.close();
  });

  it('a numeric loopback form is refused at connect time when loopback is not allowed, and reaches it when it is', async () => {
    const port = await internalService();
    const refused = new OutboundGuard(DENY_ALL).dispatcher();
    const err = await request(`http://0x7f000001:${port}/`, { dispatcher: refused }).catch((e: unknown) => e);
    await refused.close();
    expect(err).toMatchObject({ code: 'GH_ERR_OUTBOUND_DENIED', data: { address: '127.0.0.1', reason: 'loopback' } });
    expect(hits).toBe(0);
    const allowed = new OutboundGuard({ allowPrivate: [], allowLoopback: true }).dispatcher();
    const response = await request(`http://0x7f000001:${port}/`, { dispatcher: allowed });
    expect(await response.body.text()).toBe('internal secret');
    await allowed.close();
  });

  it('HTTPS to a pinned address still verifies the certificate against the host name, sent as SNI', async () => {
    const tls = (name: string) => readFileSync(new URL(`../fixtures/tls/svc-test.${name}.pem`, import.meta.url));
    server = createTlsServer({ key: tls('key'), cert: tls('cert') }, (req, res) => res.end(`served ${(req.socket as { servername?: string }).servername}`));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    // Both names resolve to the server; its certificate names svc.test only.
    const guard = new OutboundGuard({ allowPrivate: ['svc.test', 'other.test'], allowLoopback: false }, async () => ['127.0.0.1']);
    const dispatcher = guard.dispatcher({ connect: { ca: tls('cert') } });
    const response = await request(`https://svc.test:${port}/`, { dispatcher });
    expect(await response.body.text()).toBe('served svc.test');
    await expect(request(`https://other.test:${port}/`, { dispatcher })).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    await dispatcher.close();
  });

  /** A GET through `agent`: the body, or the error the request failed with. */
  const get = (url: string, agent: Agent): Promise<string | Error> =>
    new Promise((resolve) => {
      httpGet(url, { agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      }).on('error', resolve);
    });

  it('nodeAgent (the OTLP exporter’s) refuses a name that resolves to a refused address, and a literal one, before any connection; reaches an allowed one', async () => {
    const port = await internalService();
    const refused = await new OutboundGuard(DENY_ALL, async () => ['127.0.0.1']).nodeAgent('http:');
    expect(await get(`http://collector.internal:${port}/`, refused)).toMatchObject({ code: 'GH_ERR_OUTBOUND_DENIED', data: { reason: 'loopback' } });
    expect(await get(`http://127.0.0.1:${port}/`, refused)).toMatchObject({ code: 'GH_ERR_OUTBOUND_DENIED', data: { reason: 'loopback' } });
    expect(await get(`http://169.254.169.254:${port}/`, refused)).toMatchObject({ code: 'GH_ERR_OUTBOUND_DENIED', data: { reason: 'metadata' } });
    refused.destroy();
    expect(hits).toBe(0);
    const allowed = await new OutboundGuard({ allowPrivate: ['collector.internal', '127.0.0.1'], allowLoopback: false }, async () => ['127.0.0.1']).nodeAgent('http:');
    expect(await get(`http://collector.internal:${port}/`, allowed)).toBe('internal secret');
    expect(await get(`http://127.0.0.1:${port}/`, allowed)).toBe('internal secret');
    allowed.destroy();
  });
});
