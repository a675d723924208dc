import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mergeConstraints, type Constraints } from '../../src/kernel/constraints.ts';

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
