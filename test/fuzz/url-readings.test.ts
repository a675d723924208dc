// URLs an allow list admits, one to three characters away from ones it should: inserted, replaced or deleted, mostly
// in and around the authority, from the characters that URL parsers disagree on. Whatever the egress constraint
// admits under `api.example.com` and `*.example.org`, Node's two URL parsers (WHATWG, which undici and fetch use, and
// the legacy url.parse that http.get(url.parse(u)) still meets) must both read as an admitted host; and the fast
// reading of the common URL shape must give the full reading's answer. FUZZ_RUNS × 2 URLs (20,000 in `npm test`).
import { parse as legacyParse } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkEgress } from '../../src/enforcement/egress.ts';
import { hostAllowed, readUrl, readUrlEveryWay, simpleUrl } from '../../src/kernel/hosts.ts';
import { isGatewayError } from '../../src/errors.ts';
import { outcome } from '../helpers/coded-errors.ts';
import type { EgressConstraint } from '../../src/protocol/constraints.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000) * 2;
const SEED = Number(process.env.FUZZ_SEED ?? 20261205);
const ALLOWED = ['api.example.com', '*.example.org'];
const rule: EgressConstraint = { ruleId: 'api', args: ['url'], allowHosts: ALLOWED };

const SEEDS = [
  'https://api.example.com/v1/x',
  'http://api.example.com',
  'https://u:p@deep.api.example.org:8443/a?b=c#d',
  'wss://x.example.org/socket',
  'https://evil.com@api.example.com/',
  'https://api.example.com.evil.com/',
  'http://127.0.0.1/?next=api.example.com',
  'https://xn--mnchen-3ya.example.org/',
  'ftp://files.example.org/a',
  'https:api.example.com',
];

/** The characters URL parsers disagree on, plus the ones a host is made of, and now and then any code unit. */
const TRICKY = [...'\\/@:.%#?[]\'";$~&=+!*(),{}|^`<> \t\r\n\0', '\u00a0', '\u3002', '\uff0e', '\uff0f', '\uff20', '\u200b', '\u00ad', '\u2028', '\ufeff', '\u0085', ...'0123456789abcdefxX-_', '%2e', '%40', '%5c', '%00', '//', '@@', '..', '[::1]', 'xn--'];
const piece = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...TRICKY) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) });

/** One edit at a position biased towards the scheme and authority, where readings part. */
const edit = fc.tuple(fc.constantFrom('insert', 'replace', 'delete'), fc.oneof(fc.integer({ min: 0, max: 40 }), fc.nat()), piece);
const mutated = fc.tuple(fc.constantFrom(...SEEDS), fc.array(edit, { minLength: 1, maxLength: 3 })).map(([seed, edits]) =>
  edits.reduce((url, [kind, position, text]) => {
    const at = position % (url.length + 1);
    if (kind === 'insert') return url.slice(0, at) + text + url.slice(at);
    return url.slice(0, at) + (kind === 'replace' ? text : '') + url.slice(at + 1);
  }, seed),
);

function admitted(url: string): boolean {
  try {
    checkEgress({ url }, [rule]);
    return true;
  } catch (err) {
    if (!isGatewayError(err)) throw err;
    return false;
  }
}

/** A host as a resolver gets it: lowercase, no trailing dot. */
const asResolved = (host: string | null | undefined) => (host ?? '').toLowerCase().replace(/\.$/, '');

/** The host url.parse reads, or undefined where it throws (a malformed `%` in the userinfo): such a URL goes nowhere. */
function legacyHost(url: string): string | undefined {
  try {
    return asResolved(legacyParse(url).hostname);
  } catch (err) {
    if (err instanceof URIError) return undefined;
    throw err;
  }
}

describe('URLs a few characters from admitted ones', () => {
  it('are admitted only where both of Node’s URL parsers read an admitted host', () => {
    let admittedCount = 0;
    fc.assert(
      fc.property(mutated, (url) => {
        if (!admitted(url)) return;
        admittedCount++;
        const whatwg = asResolved(new URL(url).hostname);
        expect({ url, whatwg: hostAllowed(whatwg, ALLOWED) }).toEqual({ url, whatwg: true });
        const legacy = legacyHost(url);
        if (legacy !== undefined) expect({ url, legacy: hostAllowed(legacy, ALLOWED) }).toEqual({ url, legacy: true });
      }),
      { numRuns: RUNS, seed: SEED },
    );
    expect(admittedCount).toBeGreaterThan(RUNS / 20); // the mutations stay close enough to be worth checking
  });

  it('get the same answer from the fast reading and the full one', () => {
    let fast = 0;
    fc.assert(
      fc.property(mutated, (url) => {
        if (simpleUrl(url) !== undefined) fast++;
        expect({ url, reading: outcome(readUrl, url) }).toEqual({ url, reading: outcome(readUrlEveryWay, url) });
      }),
      { numRuns: RUNS, seed: SEED + 1 },
    );
    expect(fast).toBeGreaterThan(RUNS / 20);
  });
});
