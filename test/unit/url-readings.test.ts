// URLs that tools read differently: the egress constraint and CEL's hostOf()/hostMatches() refuse them rather than
// trust one parser's reading (issue 10, item 12). Each bypass below names a host that passes the allow list as a
// browser (WHATWG) reads it, while curl, Python's urlsplit, Go's net/url or Node's legacy url.parse go elsewhere.
import { describe, expect, it } from 'vitest';
import { checkEgress } from '../../src/enforcement/egress.ts';
import { canonicalHost, hostMatches, hostOf, readUrl, readUrlEveryWay, simpleUrl } from '../../src/kernel/hosts.ts';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { GatewayError, isGatewayError } from '../../src/errors.ts';
import { outcome } from '../helpers/coded-errors.ts';
import { inputs } from '../../bench/kernel.ts';
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
  // Found by a differential fuzz in review: url.parse empties a hostname over 255 characters, and http.get(url.parse(u)) goes to localhost.
  ["a host over 255 characters (Node's url.parse reads none: localhost)", `http://${'a'.repeat(250)}.api.example.org/x`],
  ['a host over 255 characters in labels of 63', `https://${`${'b'.repeat(63)}.`.repeat(4)}example.org/`],
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

describe('the common URL shape is read without the WHATWG parser, as every reading would', () => {
  const hosts = ['api.example.com', 'a', 'a_b.c-d', '-a-.b', 'a--b.com', 'api.example7-3.com', 'x.0', 'x.123', 'x.0x', 'x.0x1f', 'x.1a', '127.0.0.1', '2130706433', 'xn--mnchen-3ya.de', 'xn--zz.com', 'a.xn--', 'A.com', 'a.com.', 'a..b', '.a', 'a.com:80', 'a.com:', '[::1]', 'münchen.de', 'a%2eb', "a'b", '', '0x7f.1', '0177.0.0.1', '127.1', '4294967295', '4294967296', '1.2.3.4.5', '1e3', '0x', '0xg', '08', '1.2.3.08', 'a.0x7f'];
  const userinfos = ['', 'u@', 'u:p@', 'u:@', ':p@', '@', 'u@v@', 'api.example.com@', 'a~b._-@', 'u%40@', 'u\\@'];
  const schemes = ['https://', 'http://', 'ws://', 'wss://', 'HTTPS://', 'ftp://', 'https:', 'https:/', 'https:///', 'file://', 'foo://'];
  const rests = ['', '/', '/v1?q=1', '?q', '#f', '/a\\b', '/ x', '\\x', '/%2e%2e/', '@evil.com/', '.evil.com/', ':443/'];
  const urls = [...BYPASSES.map(([, url]) => url)];
  for (const scheme of schemes) for (const userinfo of userinfos) for (const host of hosts) for (const rest of rests) urls.push(`${scheme}${userinfo}${host}${rest}`);
  for (const { args } of inputs(50, 600, 3)) urls.push((args as { url: string }).url);

  it('gives, for every URL it reads, the full reading; the others go to the full reading', () => {
    let read = 0;
    for (const url of urls) {
      const fast = simpleUrl(url);
      if (fast === undefined) continue;
      read++;
      expect({ url, reading: fast }).toEqual({ url, reading: outcome(readUrlEveryWay, url) });
    }
    expect(read).toBeGreaterThan(1000); // the shape is common among these, so the comparison covers it
    for (const url of urls) expect({ url, reading: outcome(readUrl, url) }).toEqual({ url, reading: outcome(readUrlEveryWay, url) });
  });

  it('reads every host as the full reading does: plain names, canonical IPv4, and the kept answers of IDNA and the IP parsers', () => {
    const octets = ['0', '00', '1', '01', '9', '10', '99', '100', '199', '200', '249', '250', '255', '256', '0x7f'];
    const texts = [...hosts, '[::ffff:127.0.0.1]', '::1', '[::FFFF:7f00:1]', 'MÜNCHEN.de', '\uff41pi.example.com', '0177.0.0.1', '127.1', 'a.b.'];
    for (const a of octets) texts.push(`${a}.2.3.4`, `1.${a}.3.4`, `1.2.${a}.4`, `1.2.3.${a}`, `${a}.0.1`);
    const full = (text: string) => {
      const canonical = canonicalHostAsWritten(text);
      if (canonical === null) throw new GatewayError('GH_ERR_EGRESS_DENIED', 'not a host name', { data: { reason: 'not-a-host' } });
      return canonical;
    };
    for (const text of texts) {
      const expected = outcome(full, text);
      expect({ text, first: outcome(canonicalHost, text) }).toEqual({ text, first: expected });
      expect({ text, kept: outcome(canonicalHost, text) }).toEqual({ text, kept: expected });
    }
  });

});

/** canonicalHost as it was before its fast paths and kept answers (null: not a host), the oracle for them. */
function canonicalHostAsWritten(host: string): string | null {
  if (host === '') return '';
  let h = host.toLowerCase();
  if (!/^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?$/.test(h) || /(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)\.?$/.test(h)) {
    if (!h.startsWith('[') && isIP(h) === 6) h = `[${h}]`;
    else if (/[\s/\\@?#%]/.test(h) || (h.includes(':') && !h.startsWith('['))) return null;
    const written = h;
    h = domainToASCII(h);
    if (h === '') return null;
    const mapped = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(h);
    if (mapped) {
      const hi = parseInt(mapped[1], 16);
      const lo = parseInt(mapped[2], 16);
      return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
    if (!(/^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?$/.test(h) || /^\[[0-9a-f:.]+\]$/.test(h))) return null;
    if (/[^\x00-\x7f]/.test(written)) {
      const before = written.split('.');
      const after = h.split('.');
      if (before.length !== after.length) return null;
      for (let i = 0; i < before.length; i++) if (/[^\x00-\x7f]/.test(before[i]) ? !after[i].startsWith('xn--') : before[i] !== after[i]) return null;
    }
  }
  return h.endsWith('.') ? h.slice(0, -1) : h;
}
