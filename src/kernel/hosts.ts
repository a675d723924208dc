import { BlockList, isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { GatewayError } from '../errors.ts';
import { keepingLastReading } from './last-answer.ts';

/**
 * Host checks: the one implementation behind CEL's `hostOf()`/`hostMatches()` and the `egress` constraint
 * (enforcement/egress.ts). Hosts are compared in one canonical form, the WHATWG URL parser's (what fetch and
 * undici use): lowercased, IDNs in punycode, IPv4 in dotted decimal however it was written (`2130706433`,
 * `0x7f.1`, `0177.0.0.1`, `127.1`), IPv6 compressed and in brackets; then without a trailing dot, and an
 * IPv4-mapped IPv6 address (`[::ffff:127.0.0.1]`) as the IPv4 address it reaches. A host is a name of letters,
 * digits, `-` and `_` between dots, or an IP address: anything else (`evil.com'.x`, `a%2eb`, `a$b`) is not one,
 * since tools cut or decode such hosts differently. Nor is a name written with characters that IDNA maps to
 * ASCII (fullwidth letters, ideographic full stops, soft hyphens): a tool that skips IDNA reads another name.
 * Real IDNs are (`münchen.de`: each non-ASCII label becomes an `xn--` label).
 *
 * Host patterns: `*` (any host), `api.example.com` (that host), `*.example.com` (any host below it, at a label
 * boundary, not `example.com` itself), an IP address (`127.0.0.1`, `::1`, `[::1]`) or a CIDR block (`10.0.0.0/8`,
 * `fd00::/8`). A pattern that is none of these (`https://a.com/x`) matches nothing.
 *
 * URLs, as `pathUnder` reads paths (paths.ts), are read every way a tool might, and a URL's host is the one every
 * reading agrees on (`readUrl`):
 * - WHATWG (browsers, fetch, undici, Node's `new URL`): `\` is `/` in http(s) and ws(s) URLs, userinfo ends at the
 *   last `@`, tabs and newlines are dropped, percent-encoding in the host is decoded, and any number of slashes
 *   (or none) may follow `http:`;
 * - RFC 3986 (Python's urlsplit and requests, Go's net/url, curl and libcurl): an authority only after `//`,
 *   ending at the first `/`, `?` or `#`; `\` is an ordinary character; the host follows the userinfo's `@`;
 * - Node's legacy `url.parse`: as RFC 3986, but the host ends at the first character a host name cannot hold
 *   (the rest becomes the path), a host longer than 255 characters is no host at all (`http.get` then goes to
 *   localhost), and a scheme other than http(s), ws(s), ftp, gopher and file has an authority even without `//`
 *   (`mailto:a@evil.com` names evil.com).
 * Before reading, a URL is refused outright when it holds whitespace or a control character anywhere, a `\`
 * before its path, or more than one `@` in its authority (curl splits at the first, the others at the last).
 */

/**
 * The host a URL points at, canonical (see above), as every reading agrees. Userinfo is not the host
 * (`http://good.com@evil.com/` is evil.com), nor is a fragment. No port. Throws when the text is not an absolute
 * URL, when tools would read different hosts in it, or when its host is not a host; "" for URLs without a host
 * (`file:///x`).
 */
export function hostOf(url: string): string {
  return readUrl(url).host;
}

/** A URL as every reading agrees: its scheme (`https:`, lowercase, as WHATWG writes it) and canonical host. */
export interface UrlReading {
  readonly scheme: string;
  readonly host: string;
}

// Built once: conditions meet these routinely, and a stack costs microseconds. None quotes the text, which
// comes from the arguments: condition errors are recorded in the audit trail. Coded, with why in `data.reason`.
const problem = (reason: string, message: string) => new GatewayError('GH_ERR_EGRESS_DENIED', message, { data: { reason } });
const NOT_A_URL = problem('not-a-url', 'not an absolute URL');
const NOT_A_HOST = problem('not-a-host', 'not a host name');
const UNSAFE_CHARACTER = problem('unsafe-character', 'it holds whitespace or a control character, which tools drop, keep or refuse differently');
const BACKSLASH = problem('backslash', 'it has a backslash before its path, which some tools read as / and others as part of the host');
const SEVERAL_AT = problem('several-at', 'it has more than one @ before its path, and tools split it at different ones');
const AMBIGUOUS = problem('ambiguous', "tools read different hosts in it (WHATWG; RFC 3986, as curl and Python read it; Node's url.parse)");
const BAD_HOST = problem('bad-host', 'it names no valid host');

/** Whitespace (Unicode's too), C0 and C1 controls, DEL, and the invisible format characters IDNA deletes. */
const UNSAFE = /[\s\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
/** Schemes in which Node's legacy url.parse reads no authority unless `//` follows. */
const LEGACY_SLASHED = new Set(['http:', 'https:', 'ws:', 'wss:', 'ftp:', 'gopher:', 'file:']);
/** What Node's legacy url.parse keeps in a host; the first other character ends it. */
const LEGACY_HOST_END = /[^A-Za-z0-9.+\-_[\]:\u0080-\uffff]/;
/** Node's legacy url.parse empties a longer host name. */
const LEGACY_HOST_MAX = 255;

/** A URL read every way a tool might (see above). Throws an Error saying why when the readings disagree. */
export const readUrl = keepingLastReading(readUrlOnce);

/**
 * An http(s) or ws(s) URL whose host is a lowercase name of letters, digits, `-`, `_` and dots, with at most a
 * userinfo of letters, digits and `._~-` (a password too) before it, and no port or trailing dot; then its path,
 * query, fragment or nothing. Every reading takes that name as it is: one `@` or none, no `\` or `:` after it,
 * nothing IDNA or WHATWG's percent-decoding changes, and its end (`/`, `?`, `#`) is the same for all. A name whose
 * last label is a number is IPv4 for WHATWG (see `simpleUrl`); `xn--` labels (which WHATWG validates) are left to
 * the full reading.
 */
const SIMPLE_URL = /^(?:https?|wss?):\/\/(?:[A-Za-z0-9._~-]+(?::[A-Za-z0-9._~-]*)?@)?([a-z0-9_-]+(?:\.[a-z0-9_-]+)*)(?:[/?#]|$)/;

function readUrlOnce(text: string): UrlReading {
  return simpleUrl(text) ?? readUrlEveryWay(text);
}

/**
 * The reading of a URL of the common shape (SIMPLE_URL) without the WHATWG parser, or undefined for any other URL.
 * Exported for the test that holds it to `readUrlEveryWay`'s answers.
 */
export function simpleUrl(text: string): UrlReading | undefined {
  const found = SIMPLE_URL.exec(text);
  if (!found) return undefined;
  let host = found[1];
  if (host.length > LEGACY_HOST_MAX || host.includes('xn--') || UNSAFE.test(text)) return undefined;
  if (NUMERIC_LAST_LABEL.test(host)) {
    // IPv4 however written (`2130706433`, `0x7f.1`): every reading's raw host is this text, and WHATWG's is what
    // its host parser (domainToASCII, kept by canonicalHost) makes of it; a text it refuses takes the full reading.
    try {
      host = canonicalHost(host);
    } catch {
      return undefined;
    }
    if (!CANONICAL_IPV4.test(host)) return undefined;
  }
  return { scheme: text.slice(0, text.indexOf(':') + 1), host };
}

/** The full reading (see above). Exported for the test that compares `simpleUrl` with it. */
export function readUrlEveryWay(text: string): UrlReading {
  const scheme = SCHEME.exec(text)?.[0].toLowerCase();
  if (!scheme) throw NOT_A_URL;
  if (UNSAFE.test(text)) throw UNSAFE_CHARACTER;
  const rest = text.slice(scheme.length);
  const slashed = rest.startsWith('//');
  const authority = rest.slice(slashed ? 2 : 0, endOfAuthority(rest, slashed ? 2 : 0));
  if (authority.includes('\\')) throw BACKSLASH;
  const at = authority.indexOf('@');
  if (at >= 0 && authority.indexOf('@', at + 1) >= 0) throw SEVERAL_AT;
  let whatwg: URL;
  try {
    whatwg = new URL(text);
  } catch {
    throw NOT_A_URL;
  }
  const hostname = whatwg.hostname;
  let host: string;
  try {
    host = canonicalHost(hostname);
  } catch {
    throw BAD_HOST;
  }
  const hostAndPort = authority.slice(at + 1);
  // RFC 3986: a host only after `//`, ending at the port (or the bracket of an IPv6 literal).
  const rfc = slashed ? withoutPort(hostAndPort) : '';
  // Node's url.parse: the same, cut at the first character a host cannot hold; none when that is too long.
  const legacyHost = slashed || !LEGACY_SLASHED.has(scheme) ? withoutPort(cutAt(hostAndPort, LEGACY_HOST_END)) : '';
  const legacy = legacyHost.length > LEGACY_HOST_MAX ? '' : legacyHost;
  if (!agrees(rfc, hostname, host) || (legacy !== rfc && !agrees(legacy, hostname, host))) throw AMBIGUOUS;
  return { scheme: whatwg.protocol, host };
}

/** Where the authority that starts at `from` ends: the first `/`, `?` or `#`. */
function endOfAuthority(rest: string, from: number): number {
  for (let i = from; i < rest.length; i++) {
    const c = rest.charCodeAt(i);
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) return i;
  }
  return rest.length;
}

function withoutPort(hostAndPort: string): string {
  if (hostAndPort.startsWith('[')) {
    const close = hostAndPort.indexOf(']');
    return close < 0 ? hostAndPort : hostAndPort.slice(0, close + 1);
  }
  const colon = hostAndPort.indexOf(':');
  return colon < 0 ? hostAndPort : hostAndPort.slice(0, colon);
}

function cutAt(text: string, end: RegExp): string {
  const found = end.exec(text);
  return found ? text.slice(0, found.index) : text;
}

/**
 * Whether another reading's raw host is the WHATWG reading's canonical host. The same text as WHATWG's hostname
 * (the common case) agrees without a second canonicalHost: it would give `canonical` again.
 */
function agrees(raw: string, hostname: string, canonical: string): boolean {
  if (raw === hostname) return true;
  try {
    return canonicalHost(raw) === canonical;
  } catch {
    return false;
  }
}

/** A name the URL parser would keep as it is: lowercase labels, the last one not a number (which would make it IPv4). */
const PLAIN_NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?$/;
const NUMERIC_LAST_LABEL = /(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)\.?$/;
const MAPPED_IPV4 = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/;
const IPV6_LITERAL = /^\[[0-9a-f:.]+\]$/;
const NON_ASCII = /[^\x00-\x7f]/;
/** IPv4 as the URL parser writes it (dotted decimal, no leading zero): canonical already, as `hostOf` returns it. */
const CANONICAL_IPV4 = /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;

/** The canonical form of a host (see above). Throws when the text cannot be a host (`a/b`, `x@y`, `a b`, `a'b`, `a%2eb`). */
export function canonicalHost(host: string): string {
  if (host === '') return '';
  const h = host.toLowerCase();
  if (PLAIN_NAME.test(h) && !NUMERIC_LAST_LABEL.test(h)) return h.endsWith('.') ? h.slice(0, -1) : h;
  if (CANONICAL_IPV4.test(h)) return h;
  let known = unusualHosts.get(h);
  if (known === undefined && h.length > MAX_KEPT_HOST) known = unusualHost(h);
  else if (known === undefined) {
    if (unusualHosts.size >= 1024) unusualHosts.clear();
    unusualHosts.set(h, (known = unusualHost(h)));
  }
  if (known === null) throw NOT_A_HOST;
  return known;
}

/**
 * Canonical forms of hosts IDNA or the IPv4 and IPv6 parsers must read (`2130706433`, `[::1]`, `münchen.de`), or
 * null for a text that is not a host: `domainToASCII` takes a microsecond, and the hosts a gateway meets repeat.
 * Bounded: cleared when full.
 */
const unusualHosts = new Map<string, string | null>();
/** A DNS name has at most 253 characters; longer texts are read each time, not kept. */
const MAX_KEPT_HOST = 255;

/** `canonicalHost` of a lowercase text that is not a plain name: through IDNA and the IP parsers. Null when not a host. */
function unusualHost(lower: string): string | null {
  let h = lower;
  if (!h.startsWith('[') && isIP(h) === 6) h = `[${h}]`;
  else if (/[\s/\\@?#%]/.test(h) || (h.includes(':') && !h.startsWith('['))) return null;
  const written = h;
  h = domainToASCII(h);
  if (h === '') return null;
  const mapped = MAPPED_IPV4.exec(h);
  if (mapped) {
    const hi = parseInt(mapped[1], 16);
    const lo = parseInt(mapped[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  if (!(PLAIN_NAME.test(h) || IPV6_LITERAL.test(h)) || !idnLabelsAgree(written, h)) return null;
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/**
 * IDNA may only turn each non-ASCII label into an `xn--` label of its own. Characters it maps to ASCII instead
 * (fullwidth letters, `。` for `.`, a soft hyphen it deletes) make a name that tools without IDNA read otherwise.
 */
function idnLabelsAgree(written: string, ascii: string): boolean {
  if (!NON_ASCII.test(written)) return true;
  const before = written.split('.');
  const after = ascii.split('.');
  if (before.length !== after.length) return false;
  for (let i = 0; i < before.length; i++) {
    if (NON_ASCII.test(before[i]) ? !after[i].startsWith('xn--') : before[i] !== after[i]) return false;
  }
  return true;
}

/** Whether the host matches the pattern (see above). Throws when `host` cannot be a host. */
export function hostMatches(host: string, pattern: string): boolean {
  return hostPattern(pattern)(canonicalHost(host));
}

/** `hostMatches` with the pattern given once, for a condition that writes it as a literal: compiled at load. */
export function hostMatcherOf(pattern: string): (host: string) => boolean {
  const matches = hostPattern(pattern);
  return (host) => matches(canonicalHost(host));
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
