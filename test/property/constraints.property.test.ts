import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mergeConstraints } from '../../src/kernel/constraints.ts';
import type { Constraints } from '../../src/protocol/constraints.ts';
import { pathUnder } from '../../src/kernel/paths.ts';
import { checkPaths } from '../../src/enforcement/paths.ts';

// One rule contributes one entry per kind, so an entry's content is a function of its rule id.
const RULES = ['r1', 'r2', 'r3', 'r4', 'r5'];
const ruleIds = fc.subarray(RULES, { minLength: 1 });

const constraintsArb: fc.Arbitrary<Constraints> = fc.record(
  {
    timeoutMs: fc.integer({ min: 1, max: 100_000 }),
    maxOutputBytes: fc.integer({ min: 1, max: 1_000_000 }),
    maxArgBytes: fc.integer({ min: 1, max: 100_000 }),
    paths: ruleIds.map((ids) => ids.map((ruleId) => ({ ruleId, allow: [`/tmp/${ruleId}/**`], deny: ['**/.ssh/**'] }))),
    egress: ruleIds.map((ids) => ids.map((ruleId) => ({ ruleId, allowHosts: [`${ruleId}.example.com`] }))),
    redact: fc.record({ args: fc.subarray(['password', 'token', '/sk-[a-z]{8,}/']), result: fc.subarray(['secret', 'auth.token']) }),
    maxCallsPerSession: ruleIds.map((ids) => ids.map((ruleId) => ({ ruleId, limit: ruleId.charCodeAt(1) }))),
  },
  { requiredKeys: [] },
);

describe('mergeConstraints', () => {
  it('is commutative', () => {
    fc.assert(
      fc.property(constraintsArb, constraintsArb, (a, b) => {
        expect(mergeConstraints(a, b)).toEqual(mergeConstraints(b, a));
      }),
      { numRuns: 500 },
    );
  });

  it('is associative', () => {
    fc.assert(
      fc.property(constraintsArb, constraintsArb, constraintsArb, (a, b, c) => {
        expect(mergeConstraints(mergeConstraints(a, b), c)).toEqual(mergeConstraints(a, mergeConstraints(b, c)));
      }),
      { numRuns: 500 },
    );
  });

  it('never loosens a limit, and has {} as its identity', () => {
    fc.assert(
      fc.property(constraintsArb, constraintsArb, (a, b) => {
        const merged = mergeConstraints(a, b);
        for (const key of ['timeoutMs', 'maxOutputBytes', 'maxArgBytes'] as const) {
          if (a[key] !== undefined) expect(merged[key]).toBeLessThanOrEqual(a[key]);
        }
        for (const p of a.paths ?? []) expect(merged.paths).toContainEqual(p);
        expect(mergeConstraints(merged, {})).toEqual(merged);
      }),
      { numRuns: 300 },
    );
  });
});

// Paths built from the pieces bypass attempts are made of: traversal, encodings, separators, Windows forms.
const PIECES = ['tmp', 'ws', 'etc', 'a.txt', '.ssh', '.SSH', '..', '.', '', '.. ', '...', 'a.', '%2e%2e', '%252e', '%2f', '%5c', '%c0%ae', '%41', '\\', '\\..', '~', 'é', 'file:'];
const pathArb = fc
  .tuple(fc.constantFrom('/', '', '\\', 'file://', '/tmp/ws/', '/tmp/ws/', '/tmp/ws\\', 'file:///tmp/ws/'), fc.array(fc.constantFrom(...PIECES), { maxLength: 8 }))
  .map(([lead, pieces]) => lead + pieces.join('/'));

describe('paths: CEL and the constraint read a path the same way', () => {
  it('pathUnder(p, dir) is true exactly when the constraint allow: [dir/**] admits p', () => {
    fc.assert(
      fc.property(pathArb, (path) => {
        let cel: boolean;
        try {
          cel = pathUnder(path, '/tmp/ws');
        } catch {
          cel = false; // a throw is no match for an allow rule
        }
        let admitted = true;
        try {
          checkPaths({ path }, [{ ruleId: 'ws', args: ['path'], allow: ['/tmp/ws/**'] }]);
        } catch {
          admitted = false;
        }
        expect(admitted, path).toBe(cel);
      }),
      { numRuns: 3000 },
    );
  });

  it('a path the constraint admits stays under /tmp/ws however loosely a tool reads it', () => {
    // The loosest reader: decodes %XX until stable (overlong %c0%ae as `.`), takes \ for /, drops trailing dots
    // and spaces, and resolves `..`. Written independently of kernel/paths.ts on purpose.
    const loosely = (path: string): string => {
      let text = path.replace(/^file:\/\//i, '');
      for (let i = 0; i < 10; i++) text = text.replace(/%c0%ae/gi, '.').replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
      const out: string[] = [];
      for (const raw of text.split(/[/\\]/)) {
        const segment = /^[. ]+$/.test(raw) ? (raw.startsWith('..') ? '..' : '.') : raw.replace(/[. ]+$/, '');
        if (segment === '..') out.pop();
        else if (segment !== '' && segment !== '.') out.push(segment);
      }
      return `/${out.join('/')}`;
    };
    fc.assert(
      fc.property(pathArb, (path) => {
        try {
          checkPaths({ path }, [{ ruleId: 'ws', args: ['path'], allow: ['/tmp/ws/**'] }]);
        } catch {
          return;
        }
        const read = loosely(path);
        expect(read === '/tmp/ws' || read.startsWith('/tmp/ws/'), `${path} read as ${read}`).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});
