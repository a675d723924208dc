import { BlockList, isIP } from 'node:net';
import type { EgressConstraint } from '../kernel/constraints.ts';
import { GatewayError } from '../errors.ts';
import { allStrings, namedStrings, type ArgumentValue } from './argument-values.ts';
import { quoted, refusal } from './refusal.ts';

// Egress constraints check the host a URL names, parsed the way fetchers parse it (WHATWG URL):
// - the host is lowercased, IDNA-encoded, its trailing dot dropped; userinfo (`api.example.com@evil.com`) and
//   the fragment (`evil.com#@api.example.com`) do not count as the host;
// - IPv4 in decimal, hex, octal or short form (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) becomes its dotted
//   form, and an IPv4-mapped IPv6 address (`[::ffff:127.0.0.1]`) is matched as the IPv4 address it is;
// - only http, https, ws and wss may pass: any other scheme (`file:`, `gopher:`, `ftp:` …) is refused;
// - ports do not count.
// Hosts are names, not resolved addresses: a public name that resolves to a private address passes a rule that
// allows it. Pair egress rules with network controls where DNS is not trusted.
//
// With `args`, each named argument must be a valid URL. Without, every string that looks like a URL is checked:
// `<scheme>://…` for any scheme, and scheme-only forms of schemes fetchers follow (`file:/etc/passwd`). Tabs and
// newlines, which URL parsing drops (`ht\ttp://`), are dropped before looking.
//
// Host patterns: `api.example.com` (that host), `*.example.org` (any subdomain, at a label boundary, not the
// domain itself), `*` (any host), an IP address (`127.0.0.1`, `::1`, `[::1]`) or a CIDR block (`10.0.0.0/8`,
// `fd00::/8`).

const WEB_SCHEMES = new Set(['http:', 'https:', 'ws:', 'wss:']);
const AUTHORITY_URL = /^[a-z][a-z0-9+.-]*:\/\//i;
const FETCHED_SCHEMES = /^(?:file|gopher|ftp|ftps|sftp|tftp|dict|ldap|ldaps|smb|telnet|jar|netdoc|ssh|rtsp):/i;

interface HostMatcher {
  any: boolean;
  exact: Set<string>;
  suffixes: string[];
  ips: BlockList;
}

const matchers = new Map<string, HostMatcher>();
const CACHE_LIMIT = 1024;

/** Throws GH_ERR_EGRESS_DENIED, naming the argument and the rule, for the first URL any constraint refuses. */
export function checkEgress(args: Record<string, unknown>, constraints: readonly EgressConstraint[]): void {
  for (const constraint of constraints) {
    for (const found of urlValues(args, constraint)) {
      const why = refusedBecause(found.value as string, constraint);
      if (why) throw refusal('GH_ERR_EGRESS_DENIED', `The URL ${quoted(found.value as string)} in argument ${found.at} is refused by rule ${constraint.ruleId}: ${why}.`, { ruleId: constraint.ruleId, argument: found.at });
    }
  }
}

/** An HTTP upstream is itself egress: its own URL must pass every egress rule that applies to the call. */
export function checkUpstreamEgress(server: string, url: string, constraints: readonly EgressConstraint[]): void {
  for (const constraint of constraints) {
    const why = refusedBecause(url, constraint);
    if (why) throw refusal('GH_ERR_EGRESS_DENIED', `The upstream ${server} (${url}) is refused by rule ${constraint.ruleId}: ${why}.`, { ruleId: constraint.ruleId });
  }
}

function urlValues(args: Record<string, unknown>, constraint: EgressConstraint): ArgumentValue[] {
  if (!constraint.args) return allStrings(args).filter((v) => looksLikeUrl(v.value as string));
  return namedStrings(args, constraint.args, ({ at }) => refusal('GH_ERR_EGRESS_DENIED', `The argument ${at} must be a URL string; rule ${constraint.ruleId} checks it.`, { ruleId: constraint.ruleId, argument: at }));
}

function looksLikeUrl(text: string): boolean {
  const cleaned = text.replace(/[\t\n\r]/g, '').replace(/^[\x00-\x20]+/, '');
  return AUTHORITY_URL.test(cleaned) || FETCHED_SCHEMES.test(cleaned);
}

/** Why the URL may not be fetched under this constraint, or undefined if it may. */
function refusedBecause(text: string, constraint: EgressConstraint): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'it is not a valid absolute URL';
  }
  if (!WEB_SCHEMES.has(url.protocol)) return `the scheme ${url.protocol} is not allowed (only http, https, ws, wss)`;
  const host = hostOf(url);
  if (!host) return 'it names no host';
  return hostAllowed(host, constraint.allowHosts) ? undefined : `the host ${host} is not in allowHosts (${constraint.allowHosts.join(', ')})`;
}

/** The host as matched: lowercase, no trailing dot, IPv6 without brackets, IPv4-mapped IPv6 as IPv4. */
export function hostOf(url: URL): string {
  let host = url.hostname.replace(/\.$/, '');
  if (host.startsWith('[')) {
    host = host.slice(1, -1);
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
    if (mapped) {
      const hi = parseInt(mapped[1], 16);
      const lo = parseInt(mapped[2], 16);
      host = `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
  }
  return host;
}

export function hostAllowed(host: string, patterns: readonly string[]): boolean {
  const m = matcherFor(patterns);
  if (m.any || m.exact.has(host)) return true;
  const family = isIP(host);
  if (family) return m.ips.check(host, family === 4 ? 'ipv4' : 'ipv6');
  return m.suffixes.some((suffix) => host.endsWith(suffix) && host.length > suffix.length);
}

function matcherFor(patterns: readonly string[]): HostMatcher {
  const key = patterns.join('\n');
  let m = matchers.get(key);
  if (!m) {
    if (matchers.size >= CACHE_LIMIT) matchers.clear();
    m = compileHosts(patterns);
    matchers.set(key, m);
  }
  return m;
}

function compileHosts(patterns: readonly string[]): HostMatcher {
  const m: HostMatcher = { any: false, exact: new Set(), suffixes: [], ips: new BlockList() };
  for (const raw of patterns) {
    const pattern = raw.trim().toLowerCase().replace(/\.$/, '');
    const bare = pattern.startsWith('[') && pattern.includes(']') ? pattern.slice(1, pattern.indexOf(']')) + pattern.slice(pattern.indexOf(']') + 1) : pattern;
    const [address, prefix] = bare.split('/');
    const family = isIP(address);
    if (pattern === '*') m.any = true;
    else if (family && prefix !== undefined && /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)) m.ips.addSubnet(address, Number(prefix), family === 4 ? 'ipv4' : 'ipv6');
    else if (family && prefix === undefined) m.ips.addAddress(address, family === 4 ? 'ipv4' : 'ipv6');
    else if (pattern.startsWith('*.')) m.suffixes.push(`.${hostnameOf(pattern.slice(2), raw)}`);
    else m.exact.add(hostnameOf(pattern, raw));
  }
  return m;
}

/** A host pattern in the form URL parsing gives hosts (IDNA, lowercase); a pattern that is no host is a policy bug. */
function hostnameOf(name: string, raw: string): string {
  try {
    const url = new URL(`http://${name}/`);
    if (url.port || url.username || url.pathname !== '/') throw new Error('not a bare host');
    return hostOf(url);
  } catch {
    throw new GatewayError('GH_ERR_POLICY_INVALID', `the egress host pattern ${JSON.stringify(raw)} is not a host, *.domain, IP address or CIDR block`);
  }
}
