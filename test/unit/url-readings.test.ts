// URLs that tools read differently: the egress constraint and CEL's hostOf()/hostMatches() refuse them rather than
// trust one parser's reading (issue 10, item 12). Each bypass below names a host that passes the allow list as a
// browser (WHATWG) reads it, while curl, Python's urlsplit, Go's net/url or Node's legacy url.parse go elsewhere.
import { describe, expect, it } from 'vitest';
import { checkEgress } from '../../src/enforcement/egress.ts';
import { hostMatches, hostOf } from '../../src/kernel/hosts.ts';
import { isGatewayError } from '../../src/errors.ts';
import type { EgressConstraint } from '../../src/protocol/constraints.ts';

const rule: EgressConstraint = { ruleId: 'api', args: ['url'], allowHosts: ['api.example.com', '*.example.org'] };

function egress(url: string): string {
  try {
    checkEgress({ url }, [rule]);
    return 'admitted';
  } catch (err) {
    if (!isGatewayError(err)) throw err;
    return err.code;
  }
}

function host(url: string): string {
  try {
    return hostOf(url);
  } catch {
    return 'refused';
  }
}

export const BYPASSES: [string, string][] = [
  ['a backslash before @ (curl, libcurl, urlsplit: 127.0.0.1)', 'http://api.example.com\\@127.0.0.1:20999/x'],
  ['two backslashes before @', 'http://api.example.com\\\\@127.0.0.1/x'],
  ['a backslash in the userinfo', 'https://u\\ser@api.example.com/'],
  ['a backslash instead of the slashes', 'http:\\\\api.example.com/'],
  ['a backslash in a scheme-relative spelling', 'http:/\\api.example.com/'],
  ['several @ (curl splits at the first, WHATWG at the last)', 'http://127.0.0.1@x@api.example.com/'],
  ['several @, the first in the password', 'http://user:p@ss@api.example.com/'],
  ["an apostrophe that ends the host for Node's url.parse (evil.com)", "http://evil.com'.api.example.org/"],
  ["a semicolon that ends the host for Node's url.parse", 'http://evil.com;.api.example.org/'],
  ['other characters no host name holds', 'http://evil.com$.api.example.org/'],
  ['a percent-encoded host (WHATWG decodes, urlsplit does not)', 'http://api%2eexample.com/'],
  ['a percent-encoded IPv4 address', 'http://%31%32%37.0.0.1/'],
  ['no slashes after the scheme (RFC 3986: no host)', 'https:api.example.com/x'],
  ['one slash after the scheme', 'https:/api.example.com/x'],
  ['three slashes after the scheme', 'http:///api.example.com/x'],
  ['a tab inside the host (WHATWG drops it, curl refuses)', 'http://api.exa\tmple.com/'],
  ['a newline inside the host', 'http://api.example.com\n.evil.com/'],
  ['a carriage return', 'http://api.example.com\r@127.0.0.1/'],
  ['a NUL', 'http://api.example.com\u0000@127.0.0.1/'],
  ['a space', 'http://api.example.com @127.0.0.1/'],
  ['a leading space', ' https://api.example.com/'],
  ['a trailing newline', 'https://api.example.com/\n'],
  ['a no-break space', 'https://api.example.com\u00a0/'],
  ['a DEL', 'https://api.example.com\u007f/'],
  ['a C1 control', 'https://api.example.com\u0085/'],
  ['fullwidth letters that IDNA maps to ASCII', 'http://\uff41pi.example.com/'],
  ['ideographic full stops that IDNA maps to dots', 'http://api\u3002example\u3002com/'],
  ['a soft hyphen that IDNA drops', 'http://api.exa\u00admple.com/'],
  ['a zero-width space', 'http://api.exa\u200bmple.com/'],
];

describe('URLs that tools read differently are refused', () => {
  it.each(BYPASSES)('egress refuses %s', (_, url) => {
    expect(egress(url)).toBe('GH_ERR_EGRESS_DENIED');
  });

  it.each(BYPASSES)('hostOf throws on %s', (_, url) => {
    expect(host(url)).toBe('refused');
  });

  it.each([
    ['an apostrophe', "evil.com'.api.example.org"],
    ['a percent sign', 'api%2eexample.org'],
    ['a fullwidth letter', '\uff41pi.example.org'],
    ['a dollar sign', 'evil.com$.api.example.org'],
  ])('hostMatches throws on a host with %s', (_, h) => {
    expect(() => hostMatches(h, '*.example.org')).toThrow();
  });
});

describe('URLs every tool reads the same way still pass', () => {
  it.each([
    ['https://api.example.com/v1/x', 'api.example.com'],
    ['HTTP://API.EXAMPLE.COM./', 'api.example.com'],
    ['https://user:pw@api.example.com:8443/x', 'api.example.com'],
    ['https://user:p%40ss@api.example.com/', 'api.example.com'], // an encoded @ in the password is one @
    ['https://api.example.com/a\\b', 'api.example.com'], // a backslash in the path is not in the authority
    ['https://api.example.com/?q=a@b\\c', 'api.example.com'],
    ['https://api.example.com/#x@y\\z', 'api.example.com'],
    ['wss://deep.sub.example.org/socket', 'deep.sub.example.org'],
    ['https://xn--mnchen-3ya.example.org/', 'xn--mnchen-3ya.example.org'],
    ['https://m\u00fcnchen.example.org/', 'xn--mnchen-3ya.example.org'], // an IDN becomes punycode for everyone
  ])('%s', (url, expected) => {
    expect(egress(url)).toBe('admitted');
    expect(host(url)).toBe(expected);
  });

  it('reads hosts outside the allow list the same way as before', () => {
    expect(host('http://good.com@evil.com/')).toBe('evil.com');
    expect(host('http://evil.com#@good.com')).toBe('evil.com');
    expect(host('http://2130706433/')).toBe('127.0.0.1');
    expect(host('http://[::1]:8080/')).toBe('[::1]');
    expect(host('file:///etc/passwd')).toBe('');
    expect(host('foo://Example.COM/x')).toBe('example.com');
  });
});
