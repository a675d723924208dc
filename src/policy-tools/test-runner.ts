import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { loadYamlFile, validateYaml } from '../config/yaml-file.ts';
import { EFFECTS, type Effect } from '../kernel/effect.ts';
import type { DecisionInput } from '../kernel/decision.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { callSchema } from './call.ts';
import { decidingRules, sameRuleIds } from './explanation.ts';

const caseSchema = z.strictObject({
  name: z.string().min(1),
  call: callSchema,
  expect: z.strictObject({
    effect: z.enum(EFFECTS),
    /** Compared as a set with the decision's rule ids (every matching rule); absent means not checked. */
    ruleIds: z.array(z.string()).optional(),
  }),
});

const testFileSchema = z.strictObject({
  cases: z.array(caseSchema).superRefine((cases, ctx) => {
    const seen = new Set<string>();
    cases.forEach((c, i) => {
      if (seen.has(c.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `another case is already named "${c.name}"` });
      seen.add(c.name);
    });
  }),
});

export interface PolicyTestCase {
  name: string;
  file: string;
  line: number | undefined;
  input: DecisionInput;
  expect: { effect: Effect; ruleIds?: string[] };
}

/** The policy tests of a folder (its `*_test.yaml` and `*_test.yml` files, sorted), or the one test file named. */
export function testFilesAt(path: string): string[] {
  if (!statSync(path).isDirectory()) return [resolve(path)];
  return readdirSync(path)
    .filter((name) => /_test\.ya?ml$/.test(name))
    .sort()
    .map((name) => join(resolve(path), name));
}

/** Reads a `*_test.yaml` file; every problem is reported as `file:line: key.path: problem` (GH_ERR_POLICY_INVALID). */
export function loadTestFile(file: string): PolicyTestCase[] {
  const loaded = loadYamlFile(file, 'GH_ERR_POLICY_INVALID');
  const parsed = validateYaml(loaded, testFileSchema, 'GH_ERR_POLICY_INVALID');
  return parsed.cases.map((c, i) => ({ name: c.name, file, line: loaded.lineOf(['cases', i]), input: c.call, expect: c.expect }));
}

export interface CaseResult {
  case: PolicyTestCase;
  passed: boolean;
  effect: Effect;
  ruleIds: string[];
  reason: string;
  /** The matching rules whose effect won. */
  deciding: string[];
  /** Conditions that threw while deciding. */
  errors: { ruleId: string; error: string }[];
}

export interface RuleCoverage {
  id: string;
  /** Cases in which the rule matched. */
  positive: string[];
  /** Cases in which the rule was evaluated and did not match. */
  negative: string[];
}

export interface TestReport {
  results: CaseResult[];
  failed: number;
  coverage: RuleCoverage[];
  /** Rules lacking a positive or a negative case. */
  gaps: RuleCoverage[];
}

/** Runs the cases against the kernel and records, for every rule of its bundle, which cases did and did not match it. */
export function runPolicyTests(kernel: Kernel, cases: readonly PolicyTestCase[]): TestReport {
  const coverage = new Map<string, RuleCoverage>(kernel.bundle.rules.map((r) => [r.id, { id: r.id, positive: [], negative: [] }]));
  const results = cases.map((c): CaseResult => {
    const explanation = kernel.explain(c.input);
    const { decision } = explanation;
    for (const trace of explanation.rules) {
      const entry = coverage.get(trace.id);
      if (!entry) coverage.set(trace.id, { id: trace.id, positive: trace.matched ? [c.name] : [], negative: trace.matched ? [] : [c.name] });
      else (trace.matched ? entry.positive : entry.negative).push(c.name);
    }
    const passed = decision.effect === c.expect.effect && (c.expect.ruleIds === undefined || sameRuleIds(c.expect.ruleIds, decision.ruleIds));
    return {
      case: c,
      passed,
      effect: decision.effect,
      ruleIds: decision.ruleIds,
      reason: decision.reason,
      deciding: decidingRules(explanation),
      errors: decision.errors ?? [],
    };
  });
  const all = [...coverage.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    results,
    failed: results.filter((r) => !r.passed).length,
    coverage: all,
    gaps: all.filter((r) => r.positive.length === 0 || r.negative.length === 0),
  };
}
