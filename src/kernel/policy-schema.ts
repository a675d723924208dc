import { z } from 'zod';
import { durationMs } from '../config/duration.ts';
import { EFFECTS, type Effect } from './effect.ts';
import type { Constraints } from '../protocol/constraints.ts';
import type { ApprovalSpec, BudgetSpec, RepeatSpec, ScanMode, ThrottleSpec } from './decision.ts';
import { annotationMatchSchema, type HintName } from './hints.ts';
import { conditionProblem } from './cel.ts';
import { redactEntryProblem } from './safe-regex.ts';
import { hostPatternProblem } from './hosts.ts';

/** One rule as the kernel uses it and the snapshot hashes it, whichever file version it came from. */
export interface PolicyRule {
  id: string;
  description?: string;
  match: RuleMatch;
  /** A CEL condition (see cel.ts), checked at load. */
  when?: string;
  effect: Effect;
  /** `false`: the rule was written without an effect; it only labels and scans, and grants nothing (evaluation.ts). */
  grants?: false;
  reason?: string;
  remediation?: string;
  approval?: Omit<ApprovalSpec, 'ruleId'>;
  throttle?: Omit<ThrottleSpec, 'ruleId'>;
  /** The loop breaker: see src/session/admission.ts. */
  repeat?: Omit<RepeatSpec, 'ruleId'>;
  budget?: Omit<BudgetSpec, 'ruleId'>;
  /** Already in the merged form, entries stamped with this rule's id. */
  constraints?: Constraints;
  /** `false`: the rule is decided beside the policy on every call and recorded, but never changes an outcome (shadow.ts). */
  enforce?: false;
  /** Session labels set when a call the rule matches runs (src/session/session-labels.ts). */
  labels?: string[];
  /** Session labels set when such a call's result comes back (not an error result). */
  labelResult?: string[];
  /** The result scanner on such a call's result (src/call/result-scan.ts); `false` is the default. */
  scanResult?: ScanMode | false;
}

export interface RuleMatch {
  tenants?: string[];
  principals?: string[];
  servers?: string[];
  /** Globs on the namespaced tool name, `<upstream>__<tool>`. */
  tools?: string[];
  /** The tool must have each listed hint with this value (see `effectiveHint`). */
  annotations?: Partial<Record<HintName, boolean>>;
  /** The tool has at least one of these risk tags. */
  riskTags?: string[];
  /** Every key is present with one of its values. */
  labels?: Record<string, string[]>;
  /** Globs on a resource request's URI. */
  resources?: string[];
  /** Globs on a prompt request's namespaced prompt name, `<upstream>__<prompt>`. */
  prompts?: string[];
}

/** A bundle's override of one tool's (or a glob's) facts: annotations are hints, not trust. */
export interface ToolOverride {
  annotations?: Partial<Record<HintName, boolean>>;
  riskTags?: string[];
}

const globList = z.array(z.string().min(1)).min(1);
const names = z.array(z.string().min(1)).min(1);
const positiveDuration = durationMs.pipe(z.number().positive('must be more than 0'));
const effectsWithoutThrottle = z.enum(EFFECTS).exclude(['throttle']);
// `/` lets packs namespace their rules (`filesystem/writes-need-approval`).
const ruleId = z.string().regex(/^[A-Za-z0-9_.:\/-]{1,100}$/, 'rule ids are 1-100 letters, digits, or _ . : / -');

// ---- version 1 -------------------------------------------------------------------------------------------

const v1RuleSchema = z
  .strictObject({
    id: ruleId,
    description: z.string().optional(),
    match: z.strictObject({ servers: globList.optional(), tools: globList.optional(), annotations: annotationMatchSchema.optional() }).default({}),
    effect: effectsWithoutThrottle,
    reason: z.string().optional(),
    constraints: z.strictObject({ timeoutMs: z.number().int().positive().optional(), maxOutputBytes: z.number().int().positive().optional() }).optional(),
  })
  .transform((rule): PolicyRule => rule);

export const policyFileV1Schema = z.strictObject({
  version: z.literal(1),
  default: effectsWithoutThrottle.optional(),
  rules: z.array(v1RuleSchema).default([]),
});

// ---- version 2 -------------------------------------------------------------------------------------------

/** A non-empty string that `problem` accepts (returns undefined for); its answer is the validation message. */
const checkedString = (problem: (text: string) => string | undefined) =>
  z
    .string()
    .min(1)
    .superRefine((text, ctx) => {
      const message = problem(text);
      if (message) ctx.addIssue({ code: 'custom', message });
    });

const condition = checkedString(conditionProblem);
const redactEntry = checkedString(redactEntryProblem);
const hostPattern = checkedString(hostPatternProblem);

const constraintsSchema = z.strictObject({
  timeoutMs: positiveDuration.optional(),
  maxOutputBytes: z.number().int().positive().optional(),
  maxArgBytes: z.number().int().positive().optional(),
  paths: z
    .strictObject({ args: names.optional(), allow: z.array(z.string().min(1)).optional(), deny: z.array(z.string().min(1)).optional() })
    .refine((p) => p.allow !== undefined || p.deny !== undefined, 'paths needs allow, deny or both')
    .optional(),
  egress: z.strictObject({ args: names.optional(), allowHosts: z.array(hostPattern) }).optional(),
  redact: z.strictObject({ args: z.array(redactEntry).optional(), result: z.array(redactEntry).optional() }).optional(),
  maxCallsPerSession: z.number().int().positive().optional(),
});

const approvalSchema = z.strictObject({
  ttl: positiveDuration.optional(),
  approvers: names.optional(),
  selfApprove: z.boolean().optional(),
  quorum: z.number().int().positive().optional(),
  onApprove: z.enum(['wait_for_retry', 'execute']).optional(),
});

const throttleSchema = z.strictObject({
  limit: z.number().int().positive(),
  window: positiveDuration,
  per: z.enum(['principal', 'tenant', 'tool']).default('principal'),
});

/** Session labels: short names, as CEL reads them in `session.labels` (`private-data`, `untrusted-input`). */
const labelNames = z.array(z.string().regex(/^[a-z0-9][a-z0-9._:-]{0,63}$/, 'a label is 1-64 lowercase letters, digits, or . _ : -')).min(1);

const repeatSchema = z.strictObject({
  limit: z.number().int().positive(),
  window: positiveDuration,
});

const budgetSchema = z
  .strictObject({
    calls: z.number().int().positive().optional(),
    outputBytes: z.number().int().positive().optional(),
    upstreamTime: positiveDuration.optional(),
    distinctTools: z.number().int().positive().optional(),
    per: z.enum(['session', 'principal']).default('session'),
  })
  .refine((b) => b.calls !== undefined || b.outputBytes !== undefined || b.upstreamTime !== undefined || b.distinctTools !== undefined, 'a budget sets calls, outputBytes, upstreamTime or distinctTools');

const v2RuleSchema = z
  .strictObject({
    id: ruleId,
    description: z.string().optional(),
    match: z
      .strictObject({
        tenants: globList.optional(),
        principals: globList.optional(),
        servers: globList.optional(),
        tools: globList.optional(),
        annotations: annotationMatchSchema.optional(),
        riskTags: names.optional(),
        labels: z.record(z.string().min(1), z.union([z.string(), z.array(z.string()).min(1)]).transform((v) => (typeof v === 'string' ? [v] : v))).optional(),
        resources: globList.optional(),
        prompts: globList.optional(),
      })
      .refine((m) => !((m.tools || m.annotations || m.riskTags) && (m.resources || m.prompts)), {
        message: 'a rule matches tool calls (tools, annotations, riskTags) or resource and prompt requests (resources, prompts), not both: write two rules',
      })
      .default({}),
    when: condition.optional(),
    effect: z.enum(EFFECTS).optional(),
    reason: z.string().optional(),
    remediation: z.string().optional(),
    approval: approvalSchema.optional(),
    throttle: throttleSchema.optional(),
    repeat: repeatSchema.optional(),
    budget: budgetSchema.optional(),
    constraints: constraintsSchema.optional(),
    enforce: z.boolean().optional(),
    labels: labelNames.optional(),
    labelResult: labelNames.optional(),
    scanResult: z.union([z.boolean(), z.enum(['redact', 'warn'])]).optional(),
  })
  .superRefine((rule, ctx) => {
    if (!rule.effect && !(rule.labels || rule.labelResult || rule.scanResult)) ctx.addIssue({ code: 'custom', path: ['effect'], message: 'a rule needs an effect; only a rule that sets labels, labelResult or scanResult may leave it out' });
    if (!rule.effect && (rule.approval || rule.throttle || rule.repeat || rule.budget || rule.constraints)) ctx.addIssue({ code: 'custom', path: ['effect'], message: 'a rule without an effect only labels and scans: approval, throttle, repeat, budget and constraints need an effect' });
    if (rule.effect === 'throttle' && !rule.throttle) ctx.addIssue({ code: 'custom', path: ['throttle'], message: 'a throttle rule needs throttle: { limit, window }' });
    if (rule.effect !== 'throttle' && rule.throttle) ctx.addIssue({ code: 'custom', path: ['throttle'], message: 'throttle: is only for rules whose effect is throttle' });
    if (rule.effect !== 'require_approval' && rule.approval) ctx.addIssue({ code: 'custom', path: ['approval'], message: 'approval: is only for rules whose effect is require_approval' });
    for (const option of ['repeat', 'budget'] as const) {
      if (rule.effect === 'deny' && rule[option]) ctx.addIssue({ code: 'custom', path: [option], message: `${option}: limits calls a rule lets run; a deny rule runs none` });
    }
    for (const option of ['labels', 'labelResult', 'scanResult'] as const) {
      if (rule.effect === 'deny' && rule[option]) ctx.addIssue({ code: 'custom', path: [option], message: `${option}: acts on calls a rule lets run; a deny rule runs none` });
    }
  })
  .transform(({ match, effect, approval, throttle, repeat, budget, constraints, enforce, labels, labelResult, scanResult, ...rest }): PolicyRule => {
    const rule: PolicyRule = { ...rest, match, effect: effect ?? 'allow' };
    if (!effect) rule.grants = false;
    if (labels) rule.labels = [...new Set(labels)];
    if (labelResult) rule.labelResult = [...new Set(labelResult)];
    if (scanResult !== undefined) rule.scanResult = scanResult === true ? 'scan' : scanResult;
    if (enforce === false) rule.enforce = false;
    if (approval) {
      const { ttl, ...options } = approval;
      rule.approval = ttl === undefined ? options : { ttlMs: ttl, ...options };
    }
    if (throttle) rule.throttle = { limit: throttle.limit, windowMs: throttle.window, per: throttle.per };
    if (repeat) rule.repeat = { limit: repeat.limit, windowMs: repeat.window };
    if (budget) {
      const { upstreamTime, per, ...counts } = budget;
      rule.budget = { per, ...counts, ...(upstreamTime !== undefined ? { upstreamTimeMs: upstreamTime } : {}) };
    }
    if (constraints) rule.constraints = mergedForm(rest.id, constraints);
    return rule;
  });

const toolOverrideSchema = z.strictObject({ annotations: annotationMatchSchema.optional(), riskTags: names.optional() });

export const policyFileV2Schema = z
  .strictObject({
    version: z.literal(2),
    /** `base` files are the deployment's policy; `overlay` files are added by packs and may not set the default. */
    kind: z.enum(['base', 'overlay']).default('base'),
    name: z.string().min(1).optional(),
    default: effectsWithoutThrottle.optional(),
    tools: z.record(z.string().min(1), toolOverrideSchema).default({}),
    rules: z.array(v2RuleSchema).default([]),
  })
  .superRefine((file, ctx) => {
    if (file.kind === 'overlay' && file.default) ctx.addIssue({ code: 'custom', path: ['default'], message: 'an overlay may not set the default; only base files do' });
  });

export type PolicyFileV1 = z.output<typeof policyFileV1Schema>;
export type PolicyFileV2 = z.output<typeof policyFileV2Schema>;

function mergedForm(ruleId: string, c: z.output<typeof constraintsSchema>): Constraints {
  const out: Constraints = {};
  if (c.timeoutMs !== undefined) out.timeoutMs = c.timeoutMs;
  if (c.maxOutputBytes !== undefined) out.maxOutputBytes = c.maxOutputBytes;
  if (c.maxArgBytes !== undefined) out.maxArgBytes = c.maxArgBytes;
  if (c.paths) out.paths = [{ ruleId, ...c.paths }];
  if (c.egress) out.egress = [{ ruleId, ...c.egress }];
  if (c.redact) out.redact = { args: [...new Set(c.redact.args ?? [])].sort(), result: [...new Set(c.redact.result ?? [])].sort() };
  if (c.maxCallsPerSession !== undefined) out.maxCallsPerSession = [{ ruleId, limit: c.maxCallsPerSession }];
  return out;
}
