import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Kernel } from '../../src/kernel/kernel.ts';
import { loadPolicyFiles, mergePolicySources, parsePolicy } from '../../src/kernel/bundle.ts';
import { parseYamlText } from '../../src/config/yaml-file.ts';
import { compileGlob } from '../../src/kernel/glob.ts';
import type { DecisionInput } from '../../src/kernel/decision.ts';
import { ROOT } from '../helpers/gateway-harness.ts';
import { coded, invalidPolicy } from '../helpers/coded-errors.ts';

const policy = (text: string, file = 'p.yaml') => parsePolicy(parseYamlText(file, text, 'GH_ERR_POLICY_INVALID'));
const call = (tool: string, annotations: DecisionInput['annotations'] = undefined): DecisionInput => ({
  tenant: 'default',
  principal: 'alice',
  server: tool.split('__')[0],
  tool,
  annotations,
  args: {},
});

describe('kernel v1', () => {
  const rules = `
version: 1
default: deny
rules:
  - { id: allow-fs, match: { servers: [fs] }, effect: allow }
  - { id: bound-fs, match: { tools: ["fs__*"] }, effect: allow_with_constraints, constraints: { timeoutMs: 5000, maxOutputBytes: 100 } }
  - { id: bound-fs-more, match: { tools: ["fs__read_*"] }, effect: allow_with_constraints, constraints: { timeoutMs: 1000 } }
  - { id: approve-destructive, match: { annotations: { destructiveHint: true } }, effect: require_approval, reason: destructive }
  - { id: no-delete, match: { tools: ["*__delete*"] }, effect: deny, reason: never delete }
`;

  it('lets the strictest matching effect win and merges constraints to the most restrictive', () => {
    const kernel = new Kernel(mergePolicySources([policy(rules)]));
    const read = kernel.decide(call('fs__read_file'));
    expect(read.effect).toBe('allow_with_constraints');
    expect(read.constraints).toEqual({ timeoutMs: 1000, maxOutputBytes: 100 });
    expect([...read.ruleIds].sort()).toEqual(['allow-fs', 'bound-fs', 'bound-fs-more']);
    expect(kernel.decide(call('fs__write', { destructiveHint: true })).effect).toBe('require_approval');
    const del = kernel.decide(call('fs__delete_file', { destructiveHint: true }));
    expect(del).toMatchObject({ effect: 'deny', reason: 'never delete' });
    expect(del.ruleIds[0]).toBe('no-delete');
  });

  it('applies the default when no rule matches, and stamps the snapshot', () => {
    const kernel = new Kernel(mergePolicySources([policy(rules)]));
    const other = kernel.decide(call('web__fetch'));
    expect(other).toMatchObject({ effect: 'deny', ruleIds: [] });
    expect(other.policySnapshot).toBe(kernel.snapshot);
    const permissive = new Kernel(mergePolicySources([policy('version: 1\ndefault: allow\n')]));
    expect(permissive.decide(call('web__fetch')).effect).toBe('allow');
    expect(new Kernel(mergePolicySources([policy('version: 1\n')])).decide(call('x__y')).effect).toBe('deny');
  });

  it('gives the same snapshot whatever the rule or file order', () => {
    const a = 'version: 1\nrules:\n  - { id: r1, effect: allow }\n  - { id: r2, effect: deny, match: { tools: ["x__*"] } }\n';
    const b = 'version: 1\nrules:\n  - { id: r2, effect: deny, match: { tools: ["x__*"] } }\n  - { id: r1, effect: allow }\n';
    expect(mergePolicySources([policy(a)]).snapshot).toBe(mergePolicySources([policy(b)]).snapshot);
    const one = policy('version: 1\nrules: [{ id: r1, effect: allow }]\n', 'one.yaml');
    const two = policy('version: 1\nrules: [{ id: r2, effect: deny }]\n', 'two.yaml');
    expect(mergePolicySources([one, two]).snapshot).toBe(mergePolicySources([two, one]).snapshot);
    expect(mergePolicySources([one]).snapshot).not.toBe(mergePolicySources([one, two]).snapshot);
  });

  it('treats undeclared hints as their MCP defaults, except destructiveHint', () => {
    const kernel = new Kernel(
      mergePolicySources([policy('version: 1\nrules:\n  - { id: w, match: { annotations: { readOnlyHint: false } }, effect: allow }\n  - { id: d, match: { annotations: { destructiveHint: true } }, effect: deny }\n')]),
    );
    expect(kernel.decide(call('a__plain')).effect).toBe('allow');
    expect(kernel.decide(call('a__ro', { readOnlyHint: true })).effect).toBe('deny'); // default deny: no rule matched
    expect(kernel.decide(call('a__d', { destructiveHint: true })).effect).toBe('deny');
  });

  it('hides from listing exactly what it would deny', () => {
    const kernel = new Kernel(mergePolicySources([policy(rules)]));
    for (const [tool, annotations] of [['fs__read_file', undefined], ['fs__delete_x', undefined], ['web__get', undefined], ['fs__w', { destructiveHint: true }]] as const) {
      const input = call(tool, annotations);
      expect(kernel.mayList(input)).toBe(kernel.decide(input).effect !== 'deny');
    }
  });

  it('rejects invalid policies with the file, line and key', () => {
    expect(() => policy('version: 1\nrules:\n  - id: x\n    effect: maybe\n')).toThrow(invalidPolicy('p.yaml', { path: ['rules', 0, 'effect'], line: 4 }));
    expect(() => policy('version: 3\n')).toThrow(invalidPolicy('p.yaml', { path: ['version'], line: 1 }));
    // Not YAML at all: the file and the line where parsing failed.
    expect(() => policy('version: 1\nrules: [ { id: x, effect: allow }\n')).toThrow(invalidPolicy('p.yaml', { path: [], line: 3 }));
    expect(() => mergePolicySources([policy('version: 1\nrules: [{ id: x, effect: allow }]', 'a.yaml'), policy('version: 1\nrules: [{ id: x, effect: deny }]', 'b.yaml')])).toThrow(
      coded('GH_ERR_POLICY_INVALID', { problems: [expect.objectContaining({ file: 'a.yaml', path: ['rules', 0, 'id'] }), expect.objectContaining({ file: 'b.yaml', path: ['rules', 0, 'id'] })] }),
    );
  });

  it('loads the shipped default policy', () => {
    const bundle = loadPolicyFiles([join(ROOT, 'policies/default.yaml')]);
    const kernel = new Kernel(bundle);
    expect(kernel.decide(call('x__read', { readOnlyHint: true })).effect).toBe('allow');
    expect(kernel.decide(call('x__rm', { destructiveHint: true })).effect).toBe('require_approval');
    expect(kernel.decide(call('x__other')).constraints).toEqual({ timeoutMs: 60_000, maxOutputBytes: 1_048_576 });
  });
});

describe('globs', () => {
  it('match * and ? with everything else literal', () => {
    expect(compileGlob('fs__*')('fs__read')).toBe(true);
    expect(compileGlob('fs__*')('fsx__read')).toBe(false);
    expect(compileGlob('a.b?')('a.bc')).toBe(true);
    expect(compileGlob('a.b?')('axbc')).toBe(false);
  });
});
