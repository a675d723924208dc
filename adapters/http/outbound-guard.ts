import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress } from 'node:dns';
import type { Agent as HttpAgent } from 'node:http';
import { BlockList, isIP, type NetConnectOpts } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Agent, buildConnector } from 'undici';
import { undici } from './undici.ts';
import { GatewayError } from '../../src/errors.ts';
import { classifyAddress, isMetadataName, METADATA_ADDRESSES, type AddressClass } from './address-class.ts';

export interface OutboundRules {
  /**
   * IP addresses, CIDR blocks and host names that may be reached although they are not public. A metadata address
   * is allowed only by naming it exactly, never by a block that happens to hold it.
   */
  allowPrivate: readonly string[];
  /** Loopback may be reached (the composition root allows it when Gatehouse itself listens on loopback only). */
  allowLoopback: boolean;
}

/** Every address a name resolves to; injected by tests to play a DNS server that changes its answer. */
export type ResolveAll = (hostname: string) => Promise<readonly string[]>;

const systemResolve: ResolveAll = async (hostname) => (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

/**
 * The SSRF guard: the one check on where Gatehouse's own HTTP requests (upstreams, webhook, audit sinks, the
 * authorization server) may connect. A host is resolved, every address it resolves to is checked, and the
 * connection goes to a checked address: the guard's dispatcher resolves and checks at connect time, as the socket's
 * own lookup, so a second DNS answer (rebinding) never reaches a socket. Redirects are not
 * followed by anything that uses it (undici's request() and the OAuth fetch refuse them).
 */
export class OutboundGuard {
  private readonly allowed = new BlockList();
  private readonly allowedNames: Set<string>;
  private readonly allowedMetadata: Set<string>;

  constructor(
    private readonly rules: OutboundRules,
    private readonly resolve: ResolveAll = systemResolve,
  ) {
    const names: string[] = [];
    for (const entry of rules.allowPrivate) {
      const [net, prefix] = entry.split('/') as [string, string | undefined];
      const family = isIP(unbracket(net));
      if (family === 0) names.push(hostKey(entry));
      else if (prefix === undefined) this.allowed.addAddress(unbracket(net), family === 6 ? 'ipv6' : 'ipv4');
      else this.allowed.addSubnet(unbracket(net), Number(prefix), family === 6 ? 'ipv6' : 'ipv4');
    }
    this.allowedNames = new Set(names);
    this.allowedMetadata = new Set(METADATA_ADDRESSES.filter((a) => rules.allowPrivate.some((e) => unbracket(e) === a || e === `${a}/32` || e === `${a}/128`)));
  }

  /** The addresses `url`'s host may be reached at, checked; throws GH_ERR_OUTBOUND_DENIED when any is refused. */
  async check(url: string): Promise<string[]> {
    return this.addressesOf(new URL(url).hostname);
  }

  /**
   * An undici dispatcher whose every connection goes to an address this guard checked at connect time: the socket's
   * own lookup is the guard's (resolve, check every answer, hand those addresses over), so what is checked is what
   * is dialled, and Node still tries each of them in turn (an IPv4-only server behind a name that lists ::1 first).
   * A literal address has no lookup: it is checked before connecting. TLS verifies the certificate against the
   * URL's host name, as without the guard. `options.connect` (an object) gives the connector's TLS options (`ca` …).
   */
  dispatcher(options: Agent.Options = {}): Agent {
    const { Agent, buildConnector: connector } = undici();
    const base = connector({ ...(typeof options.connect === 'object' ? options.connect : {}), lookup: this.lookup } as buildConnector.BuildOptions);
    return new Agent({
      ...options,
      connect: (opts, callback) => {
        if (!isIP(unbracket(opts.hostname))) return base(opts, callback);
        this.addressesOf(opts.hostname).then(
          () => base(opts, callback),
          (err: Error) => callback(err, null),
        );
      },
    });
  }

  /**
   * A Node http(s) Agent for a client that takes one rather than an undici dispatcher (the OTLP trace exporter):
   * the same checks at connect time, a name through the guard's lookup, a literal address before connecting.
   */
  async nodeAgent(protocol: string): Promise<HttpAgent> {
    // https.Agent is an http.Agent whose connections are TLS: one class to extend for both.
    const NodeAgent = (protocol === 'http:' ? await import('node:http') : await import('node:https')).Agent as typeof HttpAgent;
    const guard = this;
    class GuardedAgent extends NodeAgent {
      override createConnection(options: NetConnectOpts & { host?: string }, callback: (err: Error | null, socket?: Duplex) => void): Duplex | null | undefined {
        const host = options.host ?? 'localhost';
        if (!isIP(unbracket(host))) return super.createConnection({ ...options, lookup: guard.lookup } as NetConnectOpts, callback as never);
        // Node's Agent waits for the callback when nothing is returned.
        guard.addressesOf(host).then(
          () => callback(null, super.createConnection(options) ?? undefined),
          (err: Error) => callback(err),
        );
        return undefined;
      }
    }
    return new GuardedAgent({ keepAlive: true });
  }

  /** The socket's own lookup: resolve, check every answer, hand those addresses over (all of them when asked). */
  private readonly lookup = (hostname: string, opts: { all?: boolean }, callback: (err: Error | null, address?: string | LookupAddress[], family?: number) => void): void => {
    this.addressesOf(hostname).then(
      (addresses) => (opts.all ? callback(null, addresses.map((address) => ({ address, family: isIP(address) }))) : callback(null, addresses[0], isIP(addresses[0]!))),
      (err: Error) => callback(err),
    );
  };

  private async addressesOf(urlHost: string): Promise<string[]> {
    const host = hostKey(urlHost);
    const literal = unbracket(host);
    if (isIP(literal)) {
      this.refuseUnlessAllowed(literal, literal, false);
      return [literal];
    }
    if (isMetadataName(host) && !this.allowedNames.has(host)) throw this.denied(host, host, 'metadata');
    const addresses = [...(await this.resolve(host))];
    if (addresses.length === 0) throw new Error(`${host} resolved to no address`);
    // All of them: a name with one public and one private address must not reach the private one on a retry.
    for (const address of addresses) this.refuseUnlessAllowed(host, address, this.allowedNames.has(host));
    return addresses;
  }

  private refuseUnlessAllowed(host: string, address: string, nameAllowed: boolean): void {
    const kind = classifyAddress(address);
    if (kind === undefined) return;
    if (kind === 'metadata') {
      if (this.allowedMetadata.has(address)) return;
      throw this.denied(host, address, kind);
    }
    if (nameAllowed || (kind === 'loopback' && this.rules.allowLoopback)) return;
    if (this.allowed.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4')) return;
    throw this.denied(host, address, kind);
  }

  private denied(host: string, address: string, reason: AddressClass): GatewayError {
    const allowWith = reason === 'metadata' ? `outbound.allowPrivate (the address ${address} itself)` : reason === 'loopback' ? 'outbound.allowLoopback or outbound.allowPrivate' : 'outbound.allowPrivate';
    const what = host === address ? `${host} is` : `${host} resolves to ${address},`;
    const article = reason === 'unspecified' ? 'an' : 'a';
    return new GatewayError('GH_ERR_OUTBOUND_DENIED', `refused to connect to ${host}: ${what} ${article} ${reason} address; allow it with ${allowWith}`, { data: { host, address, reason, allowWith } });
  }
}

/** A URL's hostname as compared: lowercase, without a trailing dot (`metadata.google.internal.` is the same name). */
const hostKey = (hostname: string): string => hostname.toLowerCase().replace(/\.$/, '');
const unbracket = (host: string): string => (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host);
