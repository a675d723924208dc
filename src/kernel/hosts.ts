import { BlockList, isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { GatewayError } from '../errors.ts';

/**
 * Host checks: the one implementation behind CEL's `hostOf()`/`hostMatches()` and the `egress` constraint
 * (enforcement/egress.ts). Hosts are compared in one canonical form, the WHATWG URL parser's (what fetch and
 * undici use): lowercased, IDNs in punycode, IPv4 in dotted decimal however it was written (`2130706433`,
 * `0x7f.1`, `0177.0.0.1`, `127.1`), IPv6 compressed and in brackets; then without a trailing dot, and an
 * IPv4-mapped IPv6 address (`[::ffff:127.0.0.1]`) as the IPv4 address it reaches.
 *
 * Host patterns: `*` (any host), `api.example.com` (that host), `*.example.com` (any host below it, at a label
 * boundary, not `example.com` itself), an IP address (`127.0.0.1`, `::1`, `[::1]`) or a CIDR block (`10.0.0.0/8`,
 * `fd00::/8`). A pattern that is none of these (`https://a.com/x`) matches nothing.
 */

/**
 * The host a URL points at, canonical (see above). Userinfo is not the host (`http://good.com@evil.com/` is
 * evil.com), nor is a fragment. No port. Throws when the text is not an absolute URL; "" for URLs without a host
 * (`file:///x`).
 */
export function hostOf(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw NOT_A_URL;
  }
  return canonicalHost(parsed.hostname);
}

// Built once: conditions meet these routinely, and a stack costs microseconds. Neither quotes the text, which
// comes from the arguments: condition errors are recorded in the audit trail.
const NOT_A_URL = new GatewayError('GH_ERR_EGRESS_DENIED', 'not an absolute URL', { data: { reason: 'not-a-url' } });
const NOT_A_HOST = new GatewayError('GH_ERR_EGRESS_DENIED', 'not a host name', { data: { reason: 'not-a-host' } });

/** A name the URL parser would keep as it is: lowercase labels, the last one not a number (which would make it IPv4). */
const PLAIN_NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?$/;
const NUMERIC_LAST_LABEL = /(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)\.?$/;
const MAPPED_IPV4 = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/;

/** The canonical form of a host (see above). Throws when the text cannot be a host (`a/b`, `x@y`, `a b`). */
export function canonicalHost(host: string): string {
  if (host === '') return '';
  let h = host.toLowerCase();
  if (!PLAIN_NAME.test(h) || NUMERIC_LAST_LABEL.test(h)) {
    if (!h.startsWith('[') && isIP(h) === 6) h = `[${h}]`;
    else if (/[\s/\\@?#]/.test(h) || (h.includes(':') && !h.startsWith('['))) throw NOT_A_HOST;
    h = domainToASCII(h);
    if (h === '') throw NOT_A_HOST;
    const mapped = MAPPED_IPV4.exec(h);
    if (mapped) {
      const hi = parseInt(mapped[1], 16);
      const lo = parseInt(mapped[2], 16);
      return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
  }
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/** Whether the host matches the pattern (see above). Throws when `host` cannot be a host. */
export function hostMatches(host: string, pattern: string): boolean {
  return hostPattern(pattern)(canonicalHost(host));
}

/** Whether a canonical host (a `canonicalHost` result) matches any of the patterns. */
export function hostAllowed(canonical: string, patterns: readonly string[]): boolean {
  for (const pattern of patterns) if (hostPattern(pattern)(canonical)) return true;
  return false;
}

/** Why a text is not a host pattern (see above), or undefined when it is one. */
export function hostPatternProblem(pattern: string): string | undefined {
  return hostPattern(pattern) === NOTHING ? `${JSON.stringify(pattern)} is not a host pattern: write a host (api.example.com), *.example.com, *, an IP address or a CIDR block, without scheme, port or path` : undefined;
}

type HostMatcher = (canonical: string) => boolean;

const matchers = new Map<string, HostMatcher>();
const NOTHING: HostMatcher = () => false;

/** A pattern compiled to a matcher of canonical hosts, once per pattern text (bounded memo). */
function hostPattern(pattern: string): HostMatcher {
  let matcher = matchers.get(pattern);
  if (!matcher) {
    if (matchers.size >= 1024) matchers.clear();
    matcher = compileHostPattern(pattern.trim());
    matchers.set(pattern, matcher);
  }
  return matcher;
}

function compileHostPattern(pattern: string): HostMatcher {
  if (pattern === '*') return (h) => h !== '';
  const cidr = /^\[?([0-9a-f:.]+)\]?\/(\d{1,3})$/i.exec(pattern);
  if (cidr) {
    const family = isIP(cidr[1]);
    const prefix = Number(cidr[2]);
    if (!family || prefix > (family === 4 ? 32 : 128)) return NOTHING;
    const list = new BlockList();
    list.addSubnet(cidr[1], prefix, family === 4 ? 'ipv4' : 'ipv6');
    return ipMatcher(list);
  }
  if (pattern.startsWith('*.')) {
    const suffix = canonicalOrUndefined(pattern.slice(2));
    if (!suffix || ipOf(suffix)) return NOTHING;
    const dotted = `.${suffix}`;
    return (h) => h.length > dotted.length && h.endsWith(dotted) && !ipOf(h);
  }
  const exact = canonicalOrUndefined(pattern);
  if (!exact) return NOTHING;
  const ip = ipOf(exact);
  if (ip) {
    const list = new BlockList();
    list.addAddress(ip.address, ip.type);
    return ipMatcher(list);
  }
  return (h) => h === exact;
}

function ipMatcher(list: BlockList): HostMatcher {
  return (h) => {
    const ip = ipOf(h);
    return ip !== undefined && list.check(ip.address, ip.type);
  };
}

function ipOf(canonical: string): { address: string; type: 'ipv4' | 'ipv6' } | undefined {
  const address = canonical.startsWith('[') ? canonical.slice(1, -1) : canonical;
  const family = isIP(address);
  return family === 0 ? undefined : { address, type: family === 4 ? 'ipv4' : 'ipv6' };
}

function canonicalOrUndefined(host: string): string | undefined {
  try {
    return canonicalHost(host) || undefined;
  } catch {
    return undefined;
  }
}
