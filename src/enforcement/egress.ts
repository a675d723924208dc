import { BlockList, isIP } from 'node:net';
import type { EgressConstraint } from '../kernel/constraints.ts';
import { canonicalHost, hostMatches } from '../kernel/hosts.ts';
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
// domain itself), `*` (any host), as CEL's `hostMatches()` reads them (kernel/hosts.ts; write IDNs in punycode);
// an IP address (`127.0.0.1`, `::1`, `[::1]`) or a CIDR block (`10.0.0.0/8`, `fd00::/8`) for IP hosts. A pattern
// that is none of these matches nothing.

const WEB_SCHEMES = new Set(['http:', 'https:', 'ws:', 'wss:']);
const AUTHORITY_URL = /^[a-z][a-z0-9+.-]*:\/\//i;
const FETCHED_SCHEMES = /^(?:file|gopher|ftp|ftps|sftp|tftp|dict|ldap|ldaps|smb|telnet|jar|netdoc|ssh|rtsp):/i;

const blockLists = new Map<string, BlockList>();
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
  const host = matchableHost(url);
  if (!host) return 'it names no host';
  return hostAllowed(host, constraint.allowHosts) ? undefined : `the host ${host} is not in allowHosts (${constraint.allowHosts.join(', ')})`;
}

/** The host as matched: canonical (kernel/hosts.ts), IPv6 without brackets, IPv4-mapped IPv6 as IPv4. */
export function matchableHost(url: URL): string {
  let host = canonicalHost(url.hostname);
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

/** Host names match as CEL's `hostMatches()` does; IP addresses against the IP literals and CIDR blocks. */
export function hostAllowed(host: string, patterns: readonly string[]): boolean {
  const family = isIP(host);
  if (family) return ipsOf(patterns).check(host, family === 4 ? 'ipv4' : 'ipv6') || patterns.some((p) => p.trim() === '*');
  return patterns.some((p) => hostMatches(host, p.trim()));
}

function ipsOf(patterns: readonly string[]): BlockList {
  const key = patterns.join('\n');
  let list = blockLists.get(key);
  if (!list) {
    if (blockLists.size >= CACHE_LIMIT) blockLists.clear();
    list = new BlockList();
    for (const raw of patterns) {
      const pattern = raw.trim().replace(/^\[([^\]]*)\]/, '$1');
      const [address, prefix] = pattern.split('/');
      const family = isIP(address);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (family && prefix === undefined) list.addAddress(address, type);
      else if (family && /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)) list.addSubnet(address, Number(prefix), type);
    }
    blockLists.set(key, list);
  }
  return list;
}
