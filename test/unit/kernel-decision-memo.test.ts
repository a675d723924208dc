// A plan keeps the decisions it built, by the set of rules that matched (ToolPlan.decisions): a decision from that
// memo must be the one `explain` builds anew for the same call, and no caller may change it for the next.
import { describe, expect, it } from 'vitest';
import { Kernel } from '../../src/kernel/kernel.ts';
import { mergePolicySources, parsePolicy } from '../../src/kernel/bundle.ts';
import { parseYamlText } from '../../src/config/yaml-file.ts';
import { bundleText, inputs } from '../../bench/kernel.ts';
import type { Decision, DecisionInput } from '../../src/kernel/decision.ts';
import { DecisionMemo } from '../../src/kernel/decision-memo.ts';

const kernelOf = (text: string) => new Kernel(mergePolicySources([parsePolicy(parseYamlText('p.yaml', text, 'GH_ERR_POLICY_INVALID'))]));

describe('decisions kept per plan', () => {
  it('are the decisions explain builds anew, call after call (the bench bundle: every effect, conditions that throw)', () => {
    const kernel = kernelOf(bundleText(6, 1));
    const calls = inputs(6, 600, 1);
    for (let round = 0; round < 2; round++) {
      // As JSON: the same fields in the same order, as a recorded decision would read.
      for (const input of calls) expect(JSON.stringify(kernel.decide(input))).toBe(JSON.stringify(kernel.explain(input).decision));
      for (const input of calls) expect(JSON.stringify(kernel.decide({ ...input, args: undefined }))).toBe(JSON.stringify(kernel.explain({ ...input, args: undefined }).decision));
    }
  });

  it('are frozen with their lists: a caller cannot change the decision the next call is handed', () => {
    const kernel = kernelOf(`version: 2
default: deny
rules:
  - { id: b-approve, match: { tools: [s__t] }, effect: require_approval, approval: { ttl: 1m } }
  - { id: a-throttle, match: { servers: [s] }, effect: throttle, throttle: { limit: 5, window: 1m, per: principal } }
  - { id: c-bound, match: { servers: [s] }, effect: allow_with_constraints, constraints: { timeoutMs: 1s } }
`);
    const input: DecisionInput = { tenant: 't', principal: 'p', server: 's', tool: 's__t', annotations: undefined, args: {} };
    const expected = structuredClone(kernel.decide(input));
    expect(expected.ruleIds).toEqual(['b-approve', 'a-throttle', 'c-bound']);
    for (let i = 0; i < 3; i++) {
      const decision = kernel.decide(input); // built, then kept, then from the memo
      expect(decision).toEqual(expected);
      expect(() => (decision.ruleIds as string[]).sort().push('x')).toThrow(TypeError);
      expect(() => (decision.throttles as unknown[]).pop()).toThrow(TypeError);
      expect(() => (decision.approvals as unknown[]).push({ ruleId: 'y' })).toThrow(TypeError);
      expect(() => ((decision as { reason: string }).reason = 'changed')).toThrow(TypeError);
      expect(() => ((decision.constraints as { timeoutMs?: number }).timeoutMs = 1)).toThrow(TypeError);
    }
  });

  it('tell apart calls whose matching rules are the same and whose conditions threw in other rules', () => {
    // Neither a nor b matches either call; a's error keeps its timeout, b's its output cap (a failing allow condition
    // must not shed its restrictions): the same set of matching rules, two decisions.
    const kernel = kernelOf(`version: 2
default: deny
rules:
  - { id: a, match: { servers: [s] }, effect: allow_with_constraints, when: 'args.x > 1', constraints: { timeoutMs: 1s } }
  - { id: b, match: { servers: [s] }, effect: allow_with_constraints, when: 'args.y > 1', constraints: { maxOutputBytes: 10 } }
  - { id: c, match: { servers: [s] }, effect: allow }
`);
    const call = (args: Record<string, unknown>): DecisionInput => ({ tenant: 't', principal: 'p', server: 's', tool: 's__t', annotations: undefined, args });
    const calls = [call({ y: 0 }), call({ x: 0 }), call({ y: 0 }), call({ x: 0 }), call({ x: 'one' }), call({ x: 'one' })];
    for (const input of calls) expect(JSON.stringify(kernel.decide(input))).toBe(JSON.stringify(kernel.explain(input).decision));
    expect(kernel.decide(calls[0]).constraints).toEqual({ timeoutMs: 1000 });
    expect(kernel.decide(calls[1]).constraints).toEqual({ maxOutputBytes: 10 });
    expect(kernel.decide(calls[4]).errors).not.toEqual(kernel.decide(calls[1]).errors);
  });

  it('keep a few decisions with errors per plan, whose texts may vary with the call, and the others still', () => {
    const memo = new DecisionMemo();
    const decision = (error?: string): Decision => ({ effect: 'deny', reason: 'r', ruleIds: [], policySnapshot: 's', constraints: {}, ...(error ? { errors: [{ ruleId: 'a', error }] } : {}) });
    for (let i = 0; i < 10; i++) memo.set(1, decision(`failed on call ${i}`));
    const kept = decision();
    memo.set(1, kept);
    expect(memo.size).toBe(5);
    expect(memo.get(1, undefined)).toBe(kept);
    expect(memo.get(1, [{ ruleId: 'a', error: 'failed on call 3' }])?.errors).toEqual([{ ruleId: 'a', error: 'failed on call 3' }]);
    expect(memo.get(1, [{ ruleId: 'a', error: 'failed on call 4' }])).toBeUndefined();
  });
});
