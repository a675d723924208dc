import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Kernel } from '../../src/kernel/kernel.ts';
import type { DecisionInput } from '../../src/kernel/decision.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import { invalidPolicy } from '../helpers/coded-errors.ts';
import { loadPolicyFiles } from '../../src/kernel/bundle.ts';
import { loadTestFile, runPolicyTests, testFilesAt, type PolicyTestCase } from '../../src/kernel/authoring/test-runner.ts';
import { replayDecisions } from '../../src/kernel/authoring/replay.ts';
import { callSchema, type StatedCall } from '../../src/kernel/authoring/call.ts';
import { parseSince } from '../../src/cli/commands/policy/replay.ts';
import { takePolicyPaths } from '../../src/cli/commands/policy/sources.ts';

const POLICY = `version: 1
default: deny
rules:
  - { id: read-only, match: { annotations: { readOnlyHint: true } }, effect: allow }
  - { id: fs-bounded, match: { servers: [fs] }, effect: allow_with_constraints, constraints: { timeoutMs: 1000 } }
  - { id: no-delete, match: { tools: ["*__delete*"] }, effect: deny, reason: never delete }
  - { id: never-matches, match: { servers: [nowhere] }, effect: deny }
`;

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-tools-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const call = (tool: string, extra: Partial<DecisionInput> = {}): StatedCall => callSchema.parse({ tool, ...extra });
const testCase = (name: string, input: StatedCall, effect: PolicyTestCase['expect']['effect'], ruleIds?: string[]): PolicyTestCase => ({
  name,
  file: 't_test.yaml',
  line: 1,
  input,
  expect: ruleIds ? { effect, ruleIds } : { effect },
});

describe('policy folders', () => {
  it('loads the policy files of a folder, and lists its test files apart', () => {
    const dir = dirWith({ 'a.yaml': POLICY, 'b.yml': 'version: 1\nrules: [{ id: extra, effect: allow }]\n', 'a_test.yaml': 'cases: []\n', 'notes.txt': 'x' });
    expect(loadPolicyFiles([dir]).rules.map((r) => r.id)).toEqual(['extra', 'fs-bounded', 'never-matches', 'no-delete', 'read-only']);
    expect(testFilesAt(dir)).toEqual([join(dir, 'a_test.yaml')]);
  });
});

describe('calls as authors write them', () => {
  it('derives the server from the namespaced tool and fills in the defaults', () => {
    expect(call('fs__read_file', { now: '2025-06-01T00:00:00Z' as never })).toEqual({
      tenant: 'default',
      principal: 'test',
      server: 'fs',
      tool: 'fs__read_file',
      annotations: undefined,
      args: {},
      now: Date.UTC(2025, 5, 1),
    });
    expect(callSchema.safeParse({ tool: 'plain' }).success).toBe(false);
    expect(callSchema.safeParse({ tool: 'fs__x', args: [] }).success).toBe(false);
  });
});

describe('policy test runner', () => {
  const kernel = new Kernel(loadPolicyFiles([dirWith({ 'p.yaml': POLICY })]));

  it('passes and fails cases on the effect and on the rule ids as a set', () => {
    const report = runPolicyTests(kernel, [
      testCase('read', call('fs__read', { annotations: { readOnlyHint: true } }), 'allow_with_constraints', ['read-only', 'fs-bounded']),
      testCase('delete', call('fs__delete'), 'deny', ['no-delete']), // fs-bounded matches too
      testCase('other', call('web__fetch'), 'allow'), // the default (deny) applies
    ]);
    expect(report.results.map((r) => r.passed)).toEqual([true, false, false]);
    expect(report.failed).toBe(2);
    expect(report.results[1]).toMatchObject({ effect: 'deny', deciding: ['no-delete'], reason: 'never delete' });
    expect(report.results[2]).toMatchObject({ effect: 'deny', ruleIds: [], deciding: [] });
  });

  it('counts, for every rule, the cases that matched it and those that did not', () => {
    const report = runPolicyTests(kernel, [
      testCase('read', call('fs__read', { annotations: { readOnlyHint: true } }), 'allow_with_constraints'),
      testCase('delete', call('fs__delete'), 'deny'),
    ]);
    const byId = Object.fromEntries(report.coverage.map((c) => [c.id, c]));
    expect(byId['read-only']).toEqual({ id: 'read-only', positive: ['read'], negative: ['delete'] });
    expect(byId['fs-bounded']).toEqual({ id: 'fs-bounded', positive: ['read', 'delete'], negative: [] });
    expect(byId['never-matches']).toEqual({ id: 'never-matches', positive: [], negative: ['read', 'delete'] });
    expect(report.gaps.map((g) => g.id)).toEqual(['fs-bounded', 'never-matches']);
  });

  it('lists every rule as a gap when there are no cases', () => {
    expect(runPolicyTests(kernel, []).gaps).toHaveLength(4);
  });

  it('rejects a malformed test file with the file and line of each problem', () => {
    const dir = dirWith({
      'bad_test.yaml': 'cases:\n  - name: one\n    call: { tool: fs__x }\n    expect: { effect: allow }\n  - name: one\n    call: { tool: nope }\n    expect: { effect: maybe }\n',
    });
    const file = join(dir, 'bad_test.yaml');
    // Each problem with its key path and line.
    expect(() => loadTestFile(file)).toThrow(invalidPolicy(file, { path: ['cases', 1, 'call', 'tool'], line: 6 }, { path: ['cases', 1, 'expect', 'effect'], line: 7 }));
    const dup = dirWith({ 'dup_test.yaml': 'cases:\n  - name: one\n    call: { tool: fs__x }\n    expect: { effect: allow }\n  - name: one\n    call: { tool: fs__y }\n    expect: { effect: allow }\n' });
    expect(() => loadTestFile(join(dup, 'dup_test.yaml'))).toThrow(invalidPolicy(join(dup, 'dup_test.yaml'), { path: ['cases', 1, 'name'], line: 5 }));
    const good = dirWith({ 'ok_test.yaml': 'cases:\n  - name: one\n    call: { tool: fs__x }\n    expect: { effect: allow }\n' });
    expect(loadTestFile(join(good, 'ok_test.yaml'))).toMatchObject([{ name: 'one', line: 2, input: { server: 'fs', tool: 'fs__x' } }]);
  });
});

describe('replay', () => {
  let seq = 0;
  const decided = (tenant: string, input: StatedCall | undefined, effect: string, ruleIds: string[], at = 1_000, refusal?: { code: string }): AuditRecord => ({
    seq: ++seq,
    tenant,
    at,
    type: 'job.decided',
    actor: 'kernel',
    jobId: `job-${seq}`,
    data: { effect, ruleIds, policySnapshot: 'sha256:old', reason: 'r', ...(input ? { input } : {}), ...(refusal ? { refusal } : {}) },
    prev: 'sha256:prev',
    hash: 'sha256:hash',
  });
  const draft = new Kernel(loadPolicyFiles([dirWith({ 'p.yaml': POLICY })]));

  it('groups changed decisions by old effect, new effect and the deciding draft rules', async () => {
    const records = [
      decided('default', call('fs__delete'), 'allow_with_constraints', ['fs-bounded']),
      decided('default', call('git__delete_branch'), 'allow', ['old-rule']),
      decided('acme', call('fs__delete_all'), 'allow_with_constraints', ['fs-bounded']),
      decided('default', call('fs__read', { annotations: { readOnlyHint: true } }), 'allow_with_constraints', ['fs-bounded', 'read-only']),
      decided('default', call('fs__write'), 'allow_with_constraints', ['old-bounds']),
      decided('default', call('web__fetch'), 'allow', ['old-allow']),
      decided('default', undefined, 'allow', ['old-allow']),
      { ...decided('default', call('fs__x'), 'allow', []), type: 'job.submitted' },
    ];
    const report = await replayDecisions(records, draft);
    expect(report).toMatchObject({ policySnapshot: draft.snapshot, decisions: 7, replayed: 6, skipped: 1, unchanged: 1, changed: 4, sameEffectDifferentRules: 1, redacted: 0 });
    expect(report.groups.map((g) => [g.from, g.to, g.ruleIds, g.count])).toEqual([
      ['allow_with_constraints', 'deny', ['no-delete'], 2],
      ['allow', 'deny', [], 1],
      ['allow', 'deny', ['no-delete'], 1],
    ]);
    expect(report.groups[0].examples.map((e) => [e.jobId, e.tenant, e.tool])).toEqual([
      ['job-1', 'default', 'fs__delete'],
      ['job-3', 'acme', 'fs__delete_all'],
    ]);
    expect(report.ruleGroups).toMatchObject([{ from: 'allow_with_constraints', to: 'allow_with_constraints', ruleIds: ['fs-bounded'], count: 1 }]);
  });

  it('keeps a few examples per group, honours since, and counts redacted arguments', async () => {
    const many = Array.from({ length: 5 }, (_, i) => decided('default', call('fs__delete', { args: { path: '[REDACTED]' } }), 'allow', [], 2_000 + i));
    const partly = decided('default', call('fs__delete', { args: { header: ['Bearer [REDACTED]'] } }), 'allow', [], 3_000);
    const clear = decided('default', call('fs__delete', { args: { note: 'redacted by hand' } }), 'allow', [], 3_000);
    const report = await replayDecisions([decided('default', call('fs__delete'), 'allow', [], 500), ...many, partly, clear], draft, { since: 1_000 });
    expect(report).toMatchObject({ decisions: 7, changed: 7, redacted: 6 });
    expect(report.groups[0].examples).toHaveLength(3);
  });

  it('decides at the recorded time when the input lacks one', async () => {
    const millennium = new Kernel(
      loadPolicyFiles([dirWith({ 'p.yaml': 'version: 2\ndefault: allow\nrules:\n  - { id: y2k, when: \'now < timestamp("2000-01-01T00:00:00Z")\', effect: deny }\n' })]),
    );
    const before = decided('default', call('fs__x'), 'allow', [], Date.UTC(1999, 11, 31));
    const after = decided('default', call('fs__x'), 'allow', [], Date.UTC(2000, 0, 2));
    const timed = decided('default', call('fs__x', { now: Date.UTC(1999, 0, 1) }), 'allow', [], Date.UTC(2000, 0, 2));
    const report = await replayDecisions([before, after, timed], millennium);
    expect(report).toMatchObject({ changed: 2, unchanged: 1 });
    expect(report.groups[0].examples.map((e) => e.jobId)).toEqual([before.jobId, timed.jobId]);
  });
});

describe('replay --since and --policy flags', () => {
  it('takes an ISO time or a duration ago', () => {
    expect(parseSince('7d', 10 * 86_400_000)).toBe(3 * 86_400_000);
    expect(parseSince('24h', 86_400_000)).toBe(0);
    expect(parseSince('2025-06-01', 0)).toBe(Date.UTC(2025, 5, 1));
    expect(() => parseSince('last week', 0)).toThrow(expect.objectContaining({ code: 'GH_ERR_USAGE' }));
  });

  it('collects every --policy, and the paths a shell glob puts after one', () => {
    expect(takePolicyPaths(['--policy', 'a.yaml', 'b.yaml', '--since', '1d', '--policy=dir', '--json'])).toEqual({
      paths: ['a.yaml', 'b.yaml', 'dir'],
      argv: ['--since', '1d', '--json'],
    });
  });
});
