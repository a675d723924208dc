import { describe, expect, it } from 'vitest';
import { checkEgress } from '../../src/enforcement/egress.ts';
import { canonicalHost, hostAllowed } from '../../src/kernel/hosts.ts';
import { enforceArguments } from '../../src/enforcement/call-arguments.ts';
import { isGatewayError } from '../../src/errors.ts';
import type { EgressConstraint } from '../../src/protocol/constraints.ts';

const api: EgressConstraint = { ruleId: 'api', args: ['url'], allowHosts: ['api.example.com', '*.example.org'] };

function verdict(args: Record<string, unknown>, constraints: EgressConstraint[] = [api]): string | { code: string; argument?: unknown; ruleId?: unknown } {
  try {
    checkEgress(args, constraints);
    return 'ok';
  } catch (err) {
    if (!isGatewayError(err)) throw err;
    return { code: err.code, argument: err.data?.argument, ruleId: err.data?.ruleId };
  }
}
const denied = (argument: string, ruleId = 'api') => ({ code: 'GH_ERR_EGRESS_DENIED', argument, ruleId });

describe('egress constraints', () => {
  it.each([
    'https://api.example.com/v1/x',
    'HTTP://API.EXAMPLE.COM./',
    'https://api.example.com:8443/x',
    'wss://api.example.com/socket',
    'https://deep.sub.example.org/',
    'https://user:pw@api.example.com/', // userinfo is not the host
  ])('admits %s', (url) => {
    expect(verdict({ url })).toBe('ok');
  });

  it.each([
    ['a host not listed', 'https://evil.com/'],
    ['the domain of a *. pattern itself', 'https://example.org/'],
    ['a suffix without a label boundary', 'https://notexample.org/'],
    ['a lookalike ending', 'https://api.example.com.evil.com/'],
    ['userinfo dressed as the host', 'http://api.example.com@evil.com/'],
    ['a fragment dressed as the host', 'http://evil.com#@api.example.com'],
    ['a backslash trick', 'http://evil.com\\@api.example.com/'],
    ['decimal IPv4', 'http://2130706433/'],
    ['hex IPv4', 'http://0x7f.1/'],
    ['octal IPv4', 'http://0177.0.0.1/'],
    ['IPv6 loopback', 'http://[::1]/'],
    ['IPv4-mapped IPv6', 'http://[::ffff:127.0.0.1]/'],
    ['a tab inside the scheme', 'ht\ttp://evil.com/'],
    ['a file: URL', 'file:///etc/passwd'],
    ['a gopher: URL', 'gopher://api.example.com:70/_SSRF'],
    ['a data: URL', 'data:text/plain,hi'],
    ['no URL at all', 'api.example.com'],
    ['a relative URL', '/v1/x'],
  ])('refuses %s', (_, url) => {
    expect(verdict({ url })).toEqual(denied('url'));
  });

  it('names the array element and refuses non-strings in named arguments', () => {
    const c: EgressConstraint = { ruleId: 'r', args: ['hooks.*.url'], allowHosts: ['api.example.com'] };
    expect(verdict({ hooks: [{ url: 'https://api.example.com' }, { url: 'https://evil.com' }] }, [c])).toEqual(denied('hooks.1.url', 'r'));
    expect(verdict({ url: 42 })).toEqual(denied('url'));
  });

  it('without args, checks every string that looks like a URL, at any depth', () => {
    const c: EgressConstraint = { ruleId: 'any', allowHosts: ['api.example.com'] };
    expect(verdict({ text: 'Note: see api docs', n: 1, target: 'https://api.example.com/x' }, [c])).toBe('ok');
    expect(verdict({ body: { links: ['https://api.example.com', 'http://169.254.169.254/latest/meta-data'] } }, [c])).toEqual(denied('body.links.1', 'any'));
    expect(verdict({ where: 'file:/etc/passwd' }, [c])).toEqual(denied('where', 'any'));
    expect(verdict({ where: 'gopher://x/' }, [c])).toEqual(denied('where', 'any'));
    expect(verdict({ where: ' \tHtTp://evil.com' }, [c])).toEqual(denied('where', 'any'));
    // Special schemes need no slashes, and take \ for /: each of these fetches evil.com.
    for (const where of ['http:\\\\evil.com/x', 'http:evil.com', 'https:/evil.com', 'HTTP:/\\evil.com', 'ws:evil.com', 'wss:\\\\evil.com']) {
      expect(verdict({ where }, [c]), where).toEqual(denied('where', 'any'));
    }
    // Without slashes a browser still reads api.example.com, but RFC 3986 (curl, Python) reads no host at all:
    // the readings disagree, so it is refused (test/unit/url-readings.test.ts has the whole table).
    expect(verdict({ where: 'https:api.example.com/x' }, [c])).toEqual(denied('where', 'any'));
  });

  it('matches CIDR blocks, IP literals and IPv4-mapped addresses', () => {
    expect(hostAllowed('10.1.2.3', ['10.0.0.0/8'])).toBe(true);
    expect(hostAllowed('11.1.2.3', ['10.0.0.0/8'])).toBe(false);
    expect(hostAllowed(canonicalHost('::1'), ['[::1]'])).toBe(true);
    expect(hostAllowed(canonicalHost('fd00::5'), ['fd00::/8'])).toBe(true);
    expect(verdict({ url: 'http://[::ffff:10.0.0.1]/' }, [{ ruleId: 'net', args: ['url'], allowHosts: ['10.0.0.0/8'] }])).toBe('ok');
    expect(verdict({ url: 'http://0x0a000001/' }, [{ ruleId: 'net', args: ['url'], allowHosts: ['10.0.0.0/8'] }])).toBe('ok');
    expect(verdict({ url: 'http://10.0.0.1.evil.com/' }, [{ ruleId: 'net', args: ['url'], allowHosts: ['10.0.0.0/8'] }])).toEqual(denied('url', 'net'));
  });

  it("checks an HTTP upstream's own URL against every egress rule", () => {
    const c = { egress: [api] };
    expect(() => enforceArguments({}, c, { name: 'up', url: 'https://api.example.com/mcp' })).not.toThrow();
    expect(() => enforceArguments({}, c, { name: 'up', url: 'http://127.0.0.1:3000/mcp' })).toThrow(expect.objectContaining({ code: 'GH_ERR_EGRESS_DENIED' }));
    expect(() => enforceArguments({}, c, { name: 'stdio' })).not.toThrow(); // a stdio upstream has no URL
    // The refusal names the upstream, not its URL, which may carry credentials.
    expect(() => enforceArguments({}, c, { name: 'up', url: 'https://user:s3cret@evil.com/mcp?token=t0k' })).toThrow(
      expect.objectContaining({ code: 'GH_ERR_EGRESS_DENIED', message: expect.not.stringMatching(/s3cret|t0k/) }),
    );
  });

  it('matches nothing with a pattern that is no host, and everything with *', () => {
    expect(hostAllowed('a.com', ['https://a.com/path'])).toBe(false);
    expect(hostAllowed('a.com', ['*'])).toBe(true);
    expect(hostAllowed('10.0.0.1', ['*'])).toBe(true);
  });
});
