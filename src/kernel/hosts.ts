/**
 * Host checks, shared by CEL's `hostOf()`/`hostMatches()` and the `egress` constraint. Hosts are compared in
 * one canonical form: lowercased, without a trailing dot, IPv6 in brackets, IPv4 in dotted decimal.
 */

/**
 * The host a URL points at, as the WHATWG URL parser (what fetch and undici use) reads it: userinfo dropped
 * (`http://good.com@evil.com/` is evil.com), `http://2130706433/` and `http://0x7f.1/` are 127.0.0.1, IDNs are
 * punycode. No port. Throws when the text is not an absolute URL; "" for URLs without a host (`file:///x`).
 */
export function hostOf(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`not an absolute URL: ${JSON.stringify(url.length > 200 ? `${url.slice(0, 200)}…` : url)}`);
  }
  return canonicalHost(parsed.hostname);
}

/** Lowercased, one trailing dot dropped: `EXAMPLE.com.` and `example.com` are the same host. */
export function canonicalHost(host: string): string {
  const lower = host.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/**
 * `*` matches any host; `example.com` that host only; `*.example.com` matches any host below it (at a label boundary, so
 * not `badexample.com`, and not `example.com` itself). Case and a trailing dot are ignored on both sides.
 */
export function hostMatches(host: string, pattern: string): boolean {
  const h = canonicalHost(host);
  const p = canonicalHost(pattern);
  if (p === '*') return h !== '';
  if (p.startsWith('*.')) {
    const suffix = p.slice(1); // ".example.com"
    return h.length > suffix.length && h.endsWith(suffix);
  }
  return h === p;
}
