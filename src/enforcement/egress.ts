import type { EgressConstraint } from '../protocol/constraints.ts';
import { hostAllowed, readUrl, type UrlReading } from '../kernel/hosts.ts';
import { allStrings, namedStrings, type ArgumentValue } from './argument-values.ts';
import { quoted, refusal } from './refusal.ts';

// Egress constraints check the host a URL names, read every way a tool might (kernel/hosts.ts `readUrl`: WHATWG
// as fetchers read it, RFC 3986 as curl, Python and Go read it, and Node's legacy url.parse). A URL the readings
// disagree on is refused (`http://api.example.com\@127.0.0.1/` is api.example.com to a browser and 127.0.0.1 to
// curl), and so is one with whitespace or control characters, a backslash before its path, or several `@`:
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
// `<scheme>://…` (or `:\\`) for any scheme, and any string that starts with the scheme of something fetchers
// follow, slashes or not (`http:evil.com`, `http:\\evil.com` and `https:/evil.com` all reach evil.com;
// `file:/etc/passwd`). Tabs and newlines, which URL parsing drops (`ht\ttp://`), are dropped before looking.
//
// Hosts and host patterns are kernel/hosts.ts's, the same CEL's `hostOf()` and `hostMatches()` use:
// `api.example.com`, `*.example.org` (any subdomain, at a label boundary, not the domain itself), `*`, an IP
// address (`127.0.0.1`, `::1`, `[::1]`) or a CIDR block (`10.0.0.0/8`, `fd00::/8`). Write IDNs in punycode.

const WEB_SCHEMES = new Set(['http:', 'https:', 'ws:', 'wss:']);
const AUTHORITY_URL = /^[a-z][a-z0-9+.-]*:[/\\]{2}/i;
const FETCHED_SCHEMES = /^(?:https?|wss?|file|gopher|ftp|ftps|sftp|tftp|dict|ldap|ldaps|smb|telnet|jar|netdoc|ssh|rtsp):/i;

/** Throws GH_ERR_EGRESS_DENIED, naming the argument and the rule, for the first URL any constraint refuses. */
export function checkEgress(args: Record<string, unknown>, constraints: readonly EgressConstraint[]): void {
  for (const constraint of constraints) {
    for (const found of urlValues(args, constraint)) {
      const why = refusedBecause(found.value as string, constraint);
      if (why) throw refusal('GH_ERR_EGRESS_DENIED', `The URL ${quoted(found.value as string)} in argument ${found.at} is refused by rule ${constraint.ruleId}: ${why}.`, { ruleId: constraint.ruleId, argument: found.at });
    }
  }
}

/**
 * An HTTP upstream is itself egress: its own URL must pass every egress rule that applies to the call. The
 * refusal names the upstream, not its URL, which may carry credentials (userinfo, a token in the query).
 */
export function checkUpstreamEgress(server: string, url: string, constraints: readonly EgressConstraint[]): void {
  for (const constraint of constraints) {
    const why = refusedBecause(url, constraint);
    if (why) throw refusal('GH_ERR_EGRESS_DENIED', `The upstream ${server} is refused by rule ${constraint.ruleId}: ${why}. This tool cannot be called under this policy.`, { ruleId: constraint.ruleId });
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
  let url: UrlReading;
  try {
    url = readUrl(text);
  } catch (err) {
    return (err as Error).message;
  }
  if (!WEB_SCHEMES.has(url.scheme)) return `the scheme ${url.scheme} is not allowed (only http, https, ws, wss)`;
  const { host } = url;
  if (!host) return 'it names no host';
  return hostAllowed(host, constraint.allowHosts) ? undefined : `the host ${host} is not in allowHosts (${constraint.allowHosts.join(', ')})`;
}
