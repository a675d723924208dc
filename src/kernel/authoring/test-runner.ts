import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { loadYamlFile, validateYaml } from '../../config/yaml-file.ts';
import { EFFECTS, type Effect } from '../effect.ts';
import type { Kernel } from '../kernel.ts';
import { explainCall, type ConstraintRefusal } from '../verdict.ts';
import type { ErrorCode } from '../../errors.ts';
import type { ToolFacts } from '../tool-facts.ts';
import { callSchema, resolveCall, type StatedCall } from './call.ts';
import { decidingRules, sameRuleIds } from './explanation.ts';

/** The codes a denial can be expected with: the policy's own, or a constraint's on the arguments. */
export const EXPECTABLE_CODES = ['GH_ERR_POLICY_DENIED', 'GH_ERR_PATH_DENIED', 'GH_ERR_EGRESS_DENIED', 'GH_ERR_ARGS_TOO_LARGE', 'GH_ERR_INVALID_ARGUMENTS'] as const;

const caseSchema = z.strictObject({
  name: z.string().min(1),
  call: callSchema,
  expect: z
    .strictObject({
      /** The verdict's effect: `deny` too when a constraint refuses the call's arguments. */
      effect: z.enum(EFFECTS),
      /** Compared as a set with the decision's rule ids (every matching rule); absent means not checked. */
      ruleIds: z.array(z.string()).optional(),
      /** Why the call is denied: GH_ERR_POLICY_DENIED, or the refusing constraint's code; absent means not checked. */
      code: z.enum(EXPECTABLE_CODES).optional(),
    })
    .refine((e) => e.code === undefined || e.effect === 'deny', { path: ['code'], message: 'a code is expected with effect: deny only' }),
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
  /** The call with the facts it states; the rest come from the recorded catalog, when one is used. */
  input: StatedCall;
  expect: { effect: Effect; ruleIds?: string[]; code?: ErrorCode };
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
  /** The verdict's effect: the decision's, or `deny` when a constraint refuses the arguments. */
  effect: Effect;
  /** Why a denied call is denied (see Verdict.code). */
  code?: ErrorCode;
  /** The constraint that refused the arguments, if one did. */
  refusal?: ConstraintRefusal;
  /** The kernel's effect, before the constraint check. */
  decided: Effect;
  /** Whether the tool's facts came from the recorded catalog (for the facts the call does not state itself). */
  recorded: boolean;
  ruleIds: readonly string[];
  reason: string;
  /** The matching rules whose effect won. */
  deciding: string[];
  /** Conditions that threw while deciding. */
  errors: readonly { readonly ruleId: string; readonly error: string }[];
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

/**
 * Runs the cases through the verdict function, as the live gateway decides (the tool facts of `facts`, a recorded
 * catalog, where a case states none), and records, for every rule of the bundle, which cases did and did not
 * match it.
 */
export function runPolicyTests(kernel: Kernel, cases: readonly PolicyTestCase[], facts: (call: StatedCall) => ToolFacts | undefined = () => undefined): TestReport {
  const coverage = new Map<string, RuleCoverage>(kernel.bundle.rules.map((r) => [r.id, { id: r.id, positive: [], negative: [] }]));
  const results = cases.map((c): CaseResult => {
    const known = facts(c.input);
    const { explanation, verdict } = explainCall(kernel, resolveCall(c.input, known));
    const { decision } = explanation;
    for (const trace of explanation.rules) {
      const entry = coverage.get(trace.id);
      if (!entry) coverage.set(trace.id, { id: trace.id, positive: trace.matched ? [c.name] : [], negative: trace.matched ? [] : [c.name] });
      else (trace.matched ? entry.positive : entry.negative).push(c.name);
    }
    const passed =
      verdict.effect === c.expect.effect && (c.expect.ruleIds === undefined || sameRuleIds(c.expect.ruleIds, decision.ruleIds)) && (c.expect.code === undefined || c.expect.code === verdict.code);
    return {
      case: c,
      passed,
      effect: verdict.effect,
      ...(verdict.code ? { code: verdict.code } : {}),
      ...(verdict.refusal ? { refusal: verdict.refusal } : {}),
      decided: decision.effect,
      recorded: known !== undefined,
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
