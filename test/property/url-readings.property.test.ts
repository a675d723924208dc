// Whatever URL the egress constraint admits, every real parser reads an allowed host in it: WHATWG (`new URL`),
// Node's legacy `url.parse`, RFC 3986's own regular expression (Appendix B, with the userinfo split at the first
// and at the last `@`), and Python's `urllib.parse.urlsplit`, run for real over the whole sample in one process.
import { spawnSync } from 'node:child_process';
import { parse as legacyParse } from 'node:url';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkEgress } from '../../src/enforcement/egress.ts';
import { canonicalHost, hostAllowed } from '../../src/kernel/hosts.ts';
import { binaryAvailable } from '../helpers/server-process.ts';

const ALLOW = ['api.example.com', '*.example.org'];

// URLs built from the pieces parser-difference bypasses are made of.
const urlArb = fc
  .tuple(
    fc.constantFrom('http:', 'https:', 'HTTP:', 'wss:', 'foo:'),
    fc.constantFrom('//', '//', '//', '/', '', '///', '\\\\', '/\\'),
    fc.constantFrom('', '', 'user@', 'user:pw@', 'api.example.com@', '127.0.0.1@', 'a@b@', 'api.example.com\\@', 'u%40x@', 'x.example.org:@'),
    fc.constantFrom('api.example.com', 'x.example.org', 'evil.com', '127.0.0.1', '[::1]', "evil.com'.x.example.org", 'evil.com;.x.example.org', 'api%2eexample.com', '0x7f.1', '\uff41pi.example.com', 'API.EXAMPLE.COM.', 'evil.com\\.x.example.org', 'm\u00fcnchen.example.org', 'x.example.org\u00ad'),
    fc.constantFrom('', '', ':80', ':', ':x', ':8080@evil.com'),
    fc.constantFrom('', '/', '/p', '?q=@evil.com', '#@evil.com', '\\@evil.com', '/\\evil.com', '@evil.com', '%2F@evil.com', '/a\\b', '\t', ' x'),
  )
  .map((parts) => parts.join(''));

function admitted(url: string): boolean {
  try {
    checkEgress({ url }, [{ ruleId: 'r', args: ['url'], allowHosts: ALLOW }]);
    return true;
  } catch {
    return false;
  }
}

/** Whether a raw host, as some parser read it, is one the allow list admits (no host at all is not). */
function allowed(raw: string | null | undefined): boolean {
  if (!raw) return false;
  try {
    return hostAllowed(canonicalHost(raw), ALLOW);
  } catch {
    return false;
  }
}

/** RFC 3986 Appendix B, then the userinfo split at the first or the last `@`, and the port dropped. */
function rfcHosts(url: string): string[] {
  const authority = /^(?:([^:/?#]+):)?(?:\/\/([^/?#]*))?/.exec(url)?.[2];
  if (authority === undefined) return [''];
  return [authority.slice(authority.indexOf('@') + 1), authority.slice(authority.lastIndexOf('@') + 1)].map((h) => (h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.split(':')[0]));
}

const sample = [...new Set(fc.sample(urlArb, { numRuns: 4000, seed: 1012 }))];
const passed = sample.filter(admitted);

describe('egress: an admitted URL names an allowed host to every parser', () => {
  it('admits a fair share of the sample, so the checks below check something', () => {
    expect(passed.length).toBeGreaterThan(100);
    expect(passed.length).toBeLessThan(sample.length);
  });

  it('WHATWG, RFC 3986 and Node url.parse each read an allowed host', () => {
    for (const url of passed) {
      expect(allowed(new URL(url).hostname), `WHATWG: ${JSON.stringify(url)}`).toBe(true);
      for (const host of rfcHosts(url)) expect(allowed(host), `RFC 3986: ${JSON.stringify(url)}`).toBe(true);
      expect(allowed(legacyParse(url).hostname), `url.parse: ${JSON.stringify(url)}`).toBe(true);
    }
  });

  it.runIf(binaryAvailable('python3', 'PATH', "egress's Python urlsplit cross-check"))("Python's urlsplit reads an allowed host", () => {
    const script = 'import json,sys\nfrom urllib.parse import urlsplit\nprint(json.dumps([urlsplit(u).hostname for u in json.load(sys.stdin)]))';
    const run = spawnSync('python3', ['-c', script], { input: JSON.stringify(passed), encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const hosts = JSON.parse(run.stdout) as (string | null)[];
    expect(hosts).toHaveLength(passed.length);
    passed.forEach((url, i) => expect(allowed(hosts[i]), `urlsplit: ${JSON.stringify(url)} -> ${hosts[i]}`).toBe(true));
  });
});
