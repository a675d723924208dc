import { describe, expect, it } from 'vitest';
import { Kernel } from '../../src/kernel/kernel.ts';
import { bundleFromText } from '../../src/kernel/bundle.ts';
import { ShadowPolicies } from '../../src/kernel/shadow.ts';
import type { DecisionInput } from '../../src/kernel/decision.ts';

const kernel = (rules: string, head = 'default: allow') => new Kernel(bundleFromText('p.yaml', `version: 2\n${head}\nrules:\n${rules}`));
const call = (args: Record<string, unknown> = {}): DecisionInput => ({ tenant: 't', principal: 'p', server: 'fs', tool: 'fs__write', annotations: undefined, args });

const UNENFORCED_DENY = '  - { id: would-deny, match: { tools: [fs__write] }, effect: deny, enforce: false }\n  - { id: writes, match: { tools: [fs__write] }, effect: allow_with_constraints, constraints: { maxArgBytes: 100 } }';

describe('enforce: false', () => {
  it('leaves the rule out of every enforced decision, listing included, and decides it in the rehearsal', () => {
    const k = kernel(UNENFORCED_DENY);
    expect(k.decide(call())).toMatchObject({ effect: 'allow_with_constraints', ruleIds: ['writes'] });
    const { args: _none, ...listing } = call();
    expect(k.mayList(listing)).toBe(true);
    expect(k.explain(call()).rules.map((r) => r.id)).toEqual(['writes']);
    expect(k.rehearsal?.decide(call())).toMatchObject({ effect: 'deny', ruleIds: ['would-deny', 'writes'] });
    // The snapshot covers the rule as written, so a decision names the bundle with its shadow rule in it.
    expect(k.snapshot).not.toBe(kernel('  - { id: writes, match: { tools: [fs__write] }, effect: allow_with_constraints, constraints: { maxArgBytes: 100 } }').snapshot);
  });

  it('has no rehearsal, and no shadow verdicts, when every rule is enforced', () => {
    const k = kernel('  - { id: a, match: { tools: [fs__write] }, effect: deny, enforce: true }');
    expect(k.rehearsal).toBeUndefined();
    expect(k.decide(call()).effect).toBe('deny');
    expect(new ShadowPolicies(k).decide(call())).toBeUndefined();
  });

  it('swaps the rehearsal with the bundle on a reload', () => {
    const k = kernel(UNENFORCED_DENY);
    k.replace(bundleFromText('p.yaml', 'version: 2\ndefault: allow\nrules: []'));
    expect(k.rehearsal).toBeUndefined();
  });
});

describe('shadow verdicts', () => {
  it("go through the call's verdict function: a constraint that would refuse is a deny with its code and rule", () => {
    const k = kernel(UNENFORCED_DENY);
    const draft = kernel('  - { id: tight, match: { tools: [fs__write] }, effect: allow_with_constraints, constraints: { maxArgBytes: 10 } }', 'default: deny');
    const verdicts = new ShadowPolicies(k, draft).decide(call({ text: 'x'.repeat(50) }));
    expect(verdicts).toEqual([
      { policy: 'rules', snapshot: k.snapshot, effect: 'deny', code: 'GH_ERR_POLICY_DENIED', ruleIds: ['would-deny', 'writes'], deciding: ['would-deny'] },
      { policy: 'draft', snapshot: draft.snapshot, effect: 'deny', code: 'GH_ERR_ARGS_TOO_LARGE', ruleIds: ['tight'], deciding: [] },
    ]);
  });

  it('record a shadow that throws as an error, and never throw to the call', () => {
    const k = kernel('  - { id: a, match: { tools: [fs__write] }, effect: allow }');
    const broken = Object.assign(Object.create(Kernel.prototype) as Kernel, { decide: () => { throw new Error('boom'); } });
    Object.defineProperty(broken, 'snapshot', { value: 'sha256:broken' });
    expect(new ShadowPolicies(k, broken).decide(call())).toEqual([{ policy: 'draft', snapshot: 'sha256:broken', effect: 'deny', ruleIds: [], deciding: [], error: 'boom' }]);
  });
});
