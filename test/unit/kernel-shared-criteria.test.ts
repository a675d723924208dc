// Rules that write the same names, hints, risk tags or labels share one compiled matcher (compile.ts `Shared`): each
// rule must still match exactly as it would alone, however close another rule's criteria are to its own.
import { describe, expect, it } from 'vitest';
import { Kernel } from '../../src/kernel/kernel.ts';
import { mergePolicySources, parsePolicy } from '../../src/kernel/bundle.ts';
import { parseYamlText } from '../../src/config/yaml-file.ts';
import type { DecisionInput } from '../../src/kernel/decision.ts';
import { wildcardMatch } from '../../src/kernel/glob.ts';

const kernelOf = (rules: string[]) =>
  new Kernel(mergePolicySources([parsePolicy(parseYamlText('p.yaml', `version: 2\ndefault: deny\nrules:\n${rules.map((r) => `  - ${r}`).join('\n')}\n`, 'GH_ERR_POLICY_INVALID'))]));

const criteria = [
  'tenants: [t1, t2]',
  'tenants: [t1, t2]',
  'tenants: [t2, t1]',
  'tenants: ["t1,t2"]',
  'tenants: [t1]',
  'tenants: ["t*"]',
  'principals: [bob, "team-*"]',
  'principals: [bob, "team-*"]',
  'principals: [bob]',
  'principals: ["team-*"]',
  'annotations: { readOnlyHint: true }',
  'annotations: { readOnlyHint: true }',
  'annotations: { readOnlyHint: false }',
  'annotations: { readOnlyHint: true, destructiveHint: false }',
  'riskTags: [destructive]',
  'riskTags: [destructive]',
  'riskTags: [destructive, write]',
  'labels: { env: [prod] }',
  'labels: { env: [prod] }',
  'labels: { env: [prod, dev] }',
  'labels: { env: [dev] }',
  'labels: { tier: [prod] }',
];
const rules = criteria.map((c, i) => `{ id: r${String(i).padStart(2, '0')}, match: { servers: [s], ${c} }, effect: allow }`);

describe('criteria shared between rules', () => {
  it('match each call exactly as each rule alone does', () => {
    const together = kernelOf(rules);
    const alone = rules.map((rule) => kernelOf([rule]));
    let matched = 0;
    for (const tenant of ['t1', 't2', 't1,t2', 't3'])
      for (const principal of ['bob', 'team-x', 'alice'])
        for (const annotations of [undefined, { readOnlyHint: true }, { readOnlyHint: false }, { readOnlyHint: true, destructiveHint: true }])
          for (const labels of [undefined, { env: 'prod' }, { env: 'dev' }, { tier: 'prod' }] as (Record<string, string> | undefined)[]) {
            const input: DecisionInput = { tenant, principal, server: 's', tool: 's__t', annotations, labels, riskTags: tenant === 't3' ? ['write'] : undefined, args: {} };
            const traces = together.explain(input).rules;
            const ids = together.decide(input).ruleIds;
            alone.forEach((kernel, i) => {
              const expected = kernel.explain(input).rules[0].matched;
              expect({ input, rule: i, matched: traces[i].matched }).toEqual({ input, rule: i, matched: expected });
              expect({ input, rule: i, decided: ids.includes(`r${String(i).padStart(2, '0')}`) }).toEqual({ input, rule: i, decided: expected });
              if (expected) matched++;
            });
          }
    expect(matched).toBeGreaterThan(500);
  });

  it('match a name when one of the patterns does, whatever mix of names and globs the list holds', () => {
    const lists = [['bob', 'team-*'], ['team-*', 'bob'], ['bob', 'bob', 'team-*'], ['bob', 'eve'], ['bob', 'team-*', 'svc-?'], ['a*', 'b*'], ['bob', '*']];
    for (const list of lists) {
      const kernel = kernelOf([`{ id: r, match: { servers: [s], principals: ${JSON.stringify(list)} }, effect: allow }`]);
      for (const principal of ['bob', 'team-x', 'team-', 'svc-1', 'svc-12', 'eve', 'alice', 'b', '']) {
        const input: DecisionInput = { tenant: 't', principal, server: 's', tool: 's__t', annotations: undefined, args: {} };
        const expected = list.some((pattern) => wildcardMatch(pattern, principal));
        expect({ list, principal, matched: kernel.decide(input).effect === 'allow' }).toEqual({ list, principal, matched: expected });
      }
    }
  });
});
