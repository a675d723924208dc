// A changed tool held for approval (`onDefinitionChange: approve`): the kernel turns whatever the rules allow into
// require_approval, in decide and explain alike, so the call, `policy explain` and a replay agree.
import { describe, expect, it } from 'vitest';
import { Kernel } from '../../src/kernel/kernel.ts';
import { mergePolicySources, parsePolicy } from '../../src/kernel/bundle.ts';
import { parseYamlText } from '../../src/config/yaml-file.ts';
import type { DecisionInput } from '../../src/kernel/decision.ts';

const kernel = new Kernel(
  mergePolicySources([
    parsePolicy(
      parseYamlText(
        'p.yaml',
        `version: 2
default: allow
rules:
  - { id: no-delete, effect: deny, match: { tools: [fx__delete] }, reason: never }
  - { id: ask-pay, effect: require_approval, match: { tools: [fx__pay] }, reason: money moves }
  - { id: cap, effect: allow_with_constraints, match: { tools: [fx__note] }, constraints: { maxArgBytes: 100 } }
`,
        'GH_ERR_POLICY_INVALID',
      ),
    ),
  ]),
);
const changed = { pinned: 'sha256:old', current: 'sha256:new', fields: ['description'] };
const call = (tool: string, extra: Partial<DecisionInput> = {}): DecisionInput => ({ tenant: 'default', principal: 'alice', server: 'fx', tool, annotations: undefined, args: {}, ...extra });

describe('a changed definition held for approval', () => {
  it('needs an approval whatever the rules allow, with the change as the reason, and keeps the constraints', () => {
    expect(kernel.decide(call('fx__echo')).effect).toBe('allow');
    const held = kernel.decide(call('fx__echo', { definitionChanged: changed }));
    expect(held.effect).toBe('require_approval');
    expect(held.reason).toContain('description');
    expect(held.reason).toContain('sha256:new');
    const capped = kernel.decide(call('fx__note', { definitionChanged: changed }));
    expect(capped).toMatchObject({ effect: 'require_approval', ruleIds: ['cap'], constraints: { maxArgBytes: 100 } });
  });

  it('keeps a deny a deny, and adds the change to a rule that already asks', () => {
    expect(kernel.decide(call('fx__delete', { definitionChanged: changed })).effect).toBe('deny');
    const pay = kernel.decide(call('fx__pay', { definitionChanged: changed }));
    expect(pay.effect).toBe('require_approval');
    expect(pay.reason).toMatch(/^money moves; and the definition of fx__pay changed/);
  });

  it('explains what it decides, and still lists the tool', () => {
    const input = call('fx__echo', { definitionChanged: changed });
    expect(kernel.explain(input).decision).toEqual(kernel.decide(input));
    expect(kernel.mayList(input)).toBe(true);
  });
});
