import { describe, expect, it } from 'vitest';
import { compileCondition, conditionProblem, inZone, MAX_CONDITION_LENGTH } from '../../src/kernel/cel.ts';
import { compilePathGlob, normalizePath, pathGlob, pathUnder } from '../../src/kernel/paths.ts';
import { hostMatches, hostOf } from '../../src/kernel/hosts.ts';
import { unsafeRegexReason } from '../../src/kernel/safe-regex.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { mergePolicySources, parsePolicy } from '../../src/kernel/bundle.ts';
import { parseYamlText } from '../../src/config/yaml-file.ts';
import type { DecisionInput } from '../../src/kernel/decision.ts';
import { coded } from '../helpers/coded-errors.ts';

// The helpers' refusals, by code and reason: a path that cannot be placed is GH_ERR_PATH_DENIED, as in the `paths`
// constraint; a URL or host that cannot be read is GH_ERR_EGRESS_DENIED, as in the `egress` constraint.
const pathRefused = (reason: string) => coded('GH_ERR_PATH_DENIED', { reason });
const hostRefused = (reason: string) => coded('GH_ERR_EGRESS_DENIED', { reason });

/** Evaluates a condition through the kernel, as a deny rule: 'match' | 'no' | 'error'. */
function asDeny(when: string, args: Record<string, unknown>): 'match' | 'no' | 'error' {
  const text = `version: 2\ndefault: allow\nrules:\n  - id: r\n    effect: deny\n    when: ${JSON.stringify(when)}\n`;
  const kernel = new Kernel(mergePolicySources([parsePolicy(parseYamlText('p.yaml', text, 'GH_ERR_POLICY_INVALID'))]));
  const input: DecisionInput = { tenant: 't', principal: 'p', server: 's', tool: 's__t', annotations: undefined, args, now: 0 };
  const d = kernel.decide(input);
  return d.errors ? 'error' : d.effect === 'deny' ? 'match' : 'no';
}

describe('pathUnder', () => {
  it('resolves . and .. and // lexically', () => {
    expect(pathUnder('/tmp/ws/a/b', '/tmp/ws')).toBe(true);
    expect(pathUnder('/tmp/ws', '/tmp/ws/')).toBe(true);
    expect(pathUnder('/tmp/wsx', '/tmp/ws')).toBe(false);
    expect(pathUnder('/tmp/ws/../etc', '/tmp/ws')).toBe(false);
    expect(pathUnder('/tmp/ws/./a/../b', '/tmp/ws')).toBe(true);
    expect(pathUnder('//tmp//ws//a', '/tmp/ws')).toBe(true);
    expect(pathUnder('/../../tmp/ws/a', '/tmp/ws')).toBe(true); // .. never climbs above /
    expect(pathUnder('/anything', '/')).toBe(true);
  });

  it('will not place a relative path, which depends on the working directory: neither under nor outside', () => {
    // `etc/passwd` is /etc/passwd from /, and not under /etc from /home/u: false would let it past a deny rule.
    expect(() => pathUnder('etc/passwd', '/etc')).toThrow(pathRefused('relative'));
    expect(() => pathUnder('../tmp/ws/a', '/tmp/ws')).toThrow(pathRefused('relative'));
    expect(() => pathUnder('~/.ssh/id_rsa', '/home/u/.ssh')).toThrow(pathRefused('relative'));
    expect(() => pathUnder('file:///etc/passwd', '/etc')).toThrow(pathRefused('relative')); // a tool may take it as a relative path
    expect(() => pathGlob('etc/passwd', '/etc/**')).toThrow(pathRefused('relative'));
    expect(pathGlob('.ssh/id_rsa', '**/.ssh/**')).toBe(true); // a glob that is not anchored can place it
    expect(pathUnder('anything', '/')).toBe(true);
    expect(pathUnder('/tmp/ws/a', 'tmp/ws')).toBe(false);
  });

  it('throws when percent-encoding hides a `..` or a separator, when decoding or \\ would change the answer, and on NUL', () => {
    expect(() => pathUnder('/tmp/ws/%2e%2e/%2e%2e/etc/passwd', '/tmp/ws')).toThrow(pathRefused('hidden-by-encoding'));
    expect(() => pathUnder('/tmp/ws/%2E%2E%2Fetc', '/tmp/ws')).toThrow(pathRefused('hidden-by-encoding'));
    expect(() => pathUnder('/tmp/ws/%252e%252e/%252e%252e/etc', '/tmp/ws')).toThrow(pathRefused('hidden-by-encoding'));
    expect(() => pathUnder('/etc/%2e%2e/tmp/ws/x', '/tmp/ws')).toThrow(pathRefused('hidden-by-encoding')); // decoding would let it in
    expect(() => pathUnder('/tmp/ws/..\\..\\etc', '/tmp/ws')).toThrow(pathRefused('ambiguous'));
    expect(() => pathUnder('/tmp/ws/a\0/../../etc', '/tmp/ws')).toThrow(pathRefused('nul'));
    expect(() => pathUnder('/tmp/ws/%00', '/tmp/ws')).toThrow(pathRefused('encoded-nul'));
    expect(() => pathUnder('/tmp/ws/%c0%ae%c0%ae/%c0%ae%c0%ae/etc', '/tmp/ws')).toThrow(pathRefused('not-utf8')); // overlong `.`: `..` to a lenient decoder
    expect(() => pathUnder('/etc\\..\\tmp\\ws\\x', '/tmp/ws')).toThrow(pathRefused('ambiguous')); // one file in / on POSIX
    expect(() => pathUnder('/tmp/ws/.. /.. /etc/passwd', '/tmp/ws')).toThrow(pathRefused('ambiguous')); // `.. ` is `..` to Windows
    expect(() => pathUnder('/tmp/ws/.../.../etc', '/tmp/ws')).toThrow(pathRefused('ambiguous'));
    expect(pathUnder('/tmp/ws/100%25done', '/tmp/ws')).toBe(true); // encodes nothing that moves the path
    expect(pathUnder('/tmp/ws/a%20b', '/tmp/ws')).toBe(true);
  });

  it('cannot be bypassed through a deny rule: a throw counts as a match', () => {
    const rule = '!pathUnder(args.path, "/tmp/ws")';
    expect(asDeny(rule, { path: '/tmp/ws/ok' })).toBe('no');
    expect(asDeny(rule, { path: '/tmp/ws/../secret' })).toBe('match');
    expect(asDeny(rule, { path: '/tmp/ws/%2e%2e/secret' })).toBe('error');
    expect(asDeny(rule, { path: 'relative/file' })).toBe('error');
    expect(asDeny('pathUnder(args.path, "/etc")', { path: 'etc/passwd' })).toBe('error'); // matched, on its error
    expect(asDeny(rule, { path: 42 })).toBe('error');
    expect(asDeny(rule, {})).toBe('error');
  });
});

describe('path globs', () => {
  it('match * within a segment and ** across segments', () => {
    expect(pathGlob('/tmp/ws/a/b.txt', '/tmp/ws/**')).toBe(true);
    expect(pathGlob('/tmp/ws', '/tmp/ws/**')).toBe(true);
    expect(pathGlob('/tmp/wsx/a', '/tmp/ws/**')).toBe(false);
    expect(pathGlob('/home/u/.ssh/id_rsa', '**/.ssh/**')).toBe(true);
    expect(pathGlob('/home/u/.ssh', '**/.ssh/**')).toBe(true);
    expect(pathGlob('/a/b.txt', '/a/*.txt')).toBe(true);
    expect(pathGlob('/a/b/c.txt', '/a/*.txt')).toBe(false);
    expect(pathGlob('/a/b/c.txt', '/a/**/*.txt')).toBe(true);
    expect(pathGlob('/a/c.txt', '/a/**/*.txt')).toBe(true);
    expect(pathGlob('/a/bc', '/a/b?')).toBe(true);
    expect(pathGlob('/a/b/', '/a/b?')).toBe(false);
    expect(pathGlob('/x/y.txt', 'x/*.txt')).toBe(true); // anchored at / like the paths constraint
  });

  it('normalise the path first and refuse ambiguous ones', () => {
    expect(pathGlob('/home/u/x/../.ssh/key', '**/.ssh/**')).toBe(true);
    expect(pathGlob('/tmp/ws/../../etc/passwd', '/tmp/ws/**')).toBe(false);
    expect(() => pathGlob('/home/u/%2essh/key', '**/.ssh/**')).toThrow(pathRefused('ambiguous'));
  });

  // A backtracking matcher takes minutes here: the test's own timeout is the check.
  it('stay fast on adversarial inputs', { timeout: 5_000 }, () => {
    const match = compilePathGlob('/**/a*a*a*a*a*a*a*b/**/c/**/d');
    const path = normalizePath(`/${'a/'.repeat(2000)}${'a'.repeat(5000)}`);
    expect(match(path)).toBe(false);
  });
});

describe('hosts', () => {
  it('reads the host as WHATWG URL parsers do', () => {
    expect(hostOf('HTTP://EXAMPLE.com./x')).toBe('example.com');
    expect(hostOf('https://api.Example.com:8443/v1')).toBe('api.example.com');
    expect(hostOf('http://[::1]:8080/')).toBe('[::1]');
    expect(hostOf('http://2130706433/')).toBe('127.0.0.1');
    expect(hostOf('http://0x7f.1/')).toBe('127.0.0.1');
    expect(hostOf('http://0177.0.0.1/')).toBe('127.0.0.1');
    expect(hostOf('http://good.com@evil.com/')).toBe('evil.com');
    expect(hostOf('http://good.com%2F@evil.com/')).toBe('evil.com');
    expect(hostOf('http://evil.com#@good.com')).toBe('evil.com');
    expect(hostOf('http://münchen.de/')).toBe('xn--mnchen-3ya.de');
    expect(hostOf('foo://Example.COM/x')).toBe('example.com');
    expect(hostOf('file:///etc/passwd')).toBe('');
    expect(() => hostOf('not a url')).toThrow(hostRefused('not-a-url'));
    expect(() => hostOf('/relative')).toThrow(hostRefused('not-a-url'));
  });

  it('match exact names and *. suffixes at a label boundary, ignoring case and a trailing dot', () => {
    expect(hostMatches('API.example.com.', 'api.example.com')).toBe(true);
    expect(hostMatches('a.b.example.com', '*.example.com')).toBe(true);
    expect(hostMatches('example.com', '*.example.com')).toBe(false);
    expect(hostMatches('badexample.com', '*.example.com')).toBe(false);
    expect(hostMatches('example.com.evil.io', '*.example.com')).toBe(false);
    expect(hostMatches('[::1]', '[::1]')).toBe(true);
    expect(hostMatches('anything.io', '*')).toBe(true);
    expect(hostMatches('', '*')).toBe(false);
  });

  it('compare IP hosts as addresses: IPv4-mapped IPv6, any IPv4 spelling, brackets or none, CIDR blocks', () => {
    expect(hostOf('http://[::ffff:169.254.169.254]/')).toBe('169.254.169.254');
    expect(hostMatches(hostOf('http://[::ffff:a9fe:a9fe]/'), '169.254.169.254')).toBe(true);
    expect(hostMatches(hostOf('http://[::1]/'), '::1')).toBe(true);
    expect(hostMatches('::1', '[::1]')).toBe(true);
    expect(hostMatches('0x7f.1', '127.0.0.1')).toBe(true);
    expect(hostMatches('127.0.0.1', '2130706433')).toBe(true);
    expect(hostMatches(hostOf('http://10.1.2.3/'), '10.0.0.0/8')).toBe(true);
    expect(hostMatches(hostOf('http://10.0.0.1.evil.com/'), '10.0.0.0/8')).toBe(false);
    expect(hostMatches('127.0.0.1', '*.0.0.1')).toBe(false); // an IP has no labels
    expect(() => hostMatches('evil.com/x', 'evil.com')).toThrow(hostRefused('not-a-host'));
    expect(() => hostMatches('a@evil.com', 'evil.com')).toThrow(hostRefused('not-a-host'));
  });

  it('do not repeat the argument in an error (errors are recorded in the audit trail)', () => {
    expect(() => hostOf('sk-secret-value')).toThrow(expect.objectContaining({ message: expect.not.stringContaining('sk-secret') }));
    expect(() => pathUnder('/tmp/ws/sk-secret\0', '/tmp/ws')).toThrow(expect.objectContaining({ message: expect.not.stringContaining('sk-secret') }));
    expect(() => pathUnder('/tmp/ws/sk-secret/%2e%2e/x', '/tmp/ws')).toThrow(expect.objectContaining({ message: expect.not.stringContaining('sk-secret') }));
  });

  it('cannot be bypassed through a deny rule', () => {
    const rule = '!hostMatches(hostOf(args.url), "*.example.com")';
    expect(asDeny('hostMatches(hostOf(args.url), "169.254.169.254")', { url: 'http://[::ffff:169.254.169.254]/latest' })).toBe('match');
    expect(asDeny('hostMatches(hostOf(args.url), "10.0.0.0/8")', { url: 'http://0x0a000001/' })).toBe('match');
    expect(asDeny(rule, { url: 'https://api.example.com/x' })).toBe('no');
    expect(asDeny(rule, { url: 'https://API.EXAMPLE.COM./x' })).toBe('no');
    expect(asDeny(rule, { url: 'https://api.example.com@evil.com/' })).toBe('match');
    expect(asDeny(rule, { url: 'http://2130706433/' })).toBe('match');
    expect(asDeny(rule, { url: 'nonsense' })).toBe('error');
  });
});

describe('CEL conditions', () => {
  it('see JSON integers as ints and other numbers as doubles', () => {
    const scope = (args: Record<string, unknown>) => ({ args: new Map(Object.entries(args).map(([k, v]) => [k, typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v])) }) as never;
    expect(compileCondition('args.count > 10').evaluate(scope({ count: 11 }))).toBe(true);
    expect(compileCondition('args.count + 1 == 12').evaluate(scope({ count: 11 }))).toBe(true);
    expect(compileCondition('args.ratio < 0.5').evaluate(scope({ ratio: 0.25 }))).toBe(true);
    expect(asDeny('args.count > 10', { count: 11 })).toBe('match');
    expect(asDeny('args.count * 2 == 22', { count: 11 })).toBe('match');
    expect(asDeny('args.count == 11.0', { count: 11 })).toBe('match');
    expect(asDeny('args.count > 10', { count: 10.5 })).toBe('match');
    expect(asDeny('args.items.exists(i, i.size > 3)', { items: [{ size: 1 }, { size: 4 }] })).toBe('match');
    expect(asDeny('has(args.flag) && args.flag', {})).toBe('no');
    expect(asDeny('args.?flag.orValue(false)', {})).toBe('no');
    expect(asDeny('args.missing == 1', {})).toBe('error');
  });

  it('read the wall clock of a zone through inZone(), not the slow zone getters', () => {
    const summer = new Date(Date.UTC(2025, 6, 1, 22, 30)); // 00:30 on 2 July in Paris (UTC+2)
    const winter = new Date(Date.UTC(2025, 0, 1, 22, 30)); // 23:30 on 1 January in Paris (UTC+1)
    expect(inZone(summer, 'Europe/Paris').getUTCHours()).toBe(0);
    expect(inZone(summer, 'Europe/Paris').getUTCDate()).toBe(2);
    expect(inZone(winter, 'Europe/Paris').getUTCHours()).toBe(23);
    expect(inZone(winter, 'Asia/Kathmandu').getUTCMinutes()).toBe(15); // UTC+5:45
    expect(() => inZone(winter, 'Mars/Olympus')).toThrow();
    expect(conditionProblem('now.getHours("Europe/Paris") < 8')).toMatch(/getHours\(zone\) is not allowed.*inZone/);
    expect(conditionProblem('inZone(now, "Europe/Paris").getDayOfWeek() == 1')).toBeUndefined();
  });

  it('note whether a condition reads the call (args or now)', () => {
    expect(compileCondition('args.x == 1').readsCall).toBe(true);
    expect(compileCondition('now > timestamp("2025-01-01T00:00:00Z")').readsCall).toBe(true);
    expect(compileCondition('principal == "a" && labels.env == "prod"').readsCall).toBe(false);
  });

  it('refuse matches(), nested comprehensions, oversize and deep expressions at load', () => {
    expect(conditionProblem('args.path.matches("^/tmp")')).toMatch(/matches\(\) is not allowed/);
    expect(conditionProblem('args.a.exists(x, args.b.exists(y, x == y))')).toMatch(/inside another comprehension/);
    expect(conditionProblem('args.a.filter(x, x > 1).map(x, x * 2).size() > 0')).toBeUndefined(); // chained is linear
    expect(conditionProblem(`args.x == "${'a'.repeat(MAX_CONDITION_LENGTH)}"`)).toMatch(/at most 4096/);
    expect(conditionProblem(`${'('.repeat(40)}true${')'.repeat(40)}`)).toMatch(/invalid CEL: .*maxDepth/);
    expect(conditionProblem(Array.from({ length: 120 }, (_, i) => `args.x==${i}`).join('||'))).toMatch(/invalid CEL: .*maxAstNodes/);
    expect(conditionProblem('args.x')).toBeUndefined(); // dyn: checked to be a bool when evaluated
    expect(conditionProblem('"a" + 1')).toMatch(/invalid CEL/);
  });
});

describe('redact regexes', () => {
  it('accept ordinary patterns', () => {
    for (const ok of ['/sk-[A-Za-z0-9]{20,}/', '/AKIA[0-9A-Z]{16}/', '/Bearer [A-Za-z0-9._-]+/i', '/\\b\\d{3}-\\d{2}-\\d{4}\\b/', '/(?:ab)+c/', '/(\\d{3}-){2}\\d{4}/', '/[(+*]+/', '/a\\(+/']) {
      expect(unsafeRegexReason(ok), ok).toBeUndefined();
    }
  });

  it('refuse backreferences, nested quantifiers and bad syntax', () => {
    expect(unsafeRegexReason('/(a)\\1/')).toMatch(/backreferences/);
    expect(unsafeRegexReason('/(?<x>a)\\k<x>/')).toMatch(/backreferences/);
    for (const bad of ['/(a+)+$/', '/(a*)*b/', '/(a|aa)*b/', '/(?:\\w{2,})+x/', '/((ab)*c)+/', '/(a?)+/', '/(x+x+)+y/', '/(a+){3}/', '/(\\d{2})*/']) {
      expect(unsafeRegexReason(bad), bad).toMatch(/nested quantifiers/);
    }
    expect(unsafeRegexReason('/a(/')).toMatch(/invalid regex/);
    expect(unsafeRegexReason('/x*/')).toMatch(/empty string/); // "abc" would become "[R]a[R]b[R]c[R]"
    expect(unsafeRegexReason('/(?:sk-)?/i')).toMatch(/empty string/);
    expect(unsafeRegexReason('/a/g')).toMatch(/flags/);
    expect(unsafeRegexReason('//')).toMatch(/written \/pattern\/flags/);
    expect(unsafeRegexReason(`/${'a'.repeat(600)}/`)).toMatch(/at most 512/);
  });
});
