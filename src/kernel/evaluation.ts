import type { ToolAnnotations } from '../protocol/mcp.ts';
import { targets, type CompiledPolicy, type CompiledRule, type RequestTarget, type ToolPlan } from './compile.ts';
import type { Decision, DecisionInput, RuleTrace } from './decision.ts';
import { mergeConstraints } from './constraints.ts';
import type { Constraints } from '../protocol/constraints.ts';
import { EFFECTS, type Effect } from './effect.ts';
import { celValue, firstLine, sessionValue, Thrown, type ConditionScope } from './cel.ts';
import { NOT_A_MAP } from './cel-closure.ts';
import { effectiveHint, impliedRiskTags } from './hints.ts';
import { overriddenAnnotations } from './tool-overrides.ts';
import { DEFAULT_METHOD } from './request-kind.ts';
import type { DecisionMemo } from './decision-memo.ts';

/**
 * The one evaluation that `decide` and `explain` share, so they cannot drift apart: `testRule` says whether a
 * rule matches one call (and why not), `Tally` turns the outcomes into a decision.
 */

/** Outcomes of `testRule`. At most ASSUMED_MATCH means the rule matched. */
export const Outcome = {
  MATCHED: 0,
  /** The condition threw; a deny or require_approval rule matches anyway. */
  MATCHED_ON_ERROR: 1,
  /** Listing: the condition reads args or now, and the caller may meet it. */
  ASSUMED_MATCH: 2,
  SERVER: 3,
  TOOL: 4,
  TENANT: 5,
  PRINCIPAL: 6,
  ANNOTATIONS: 7,
  RISK_TAGS: 8,
  LABELS: 9,
  WHEN_FALSE: 10,
  /**
   * The condition threw; an allow, allow_with_constraints or throttle rule does not match (it grants nothing),
   * but its constraints and throttle still apply: a failing condition must not shed a restriction.
   */
  WHEN_ERROR: 11,
  /** Listing: a deny rule's condition reads args or now, and the caller may avoid it. */
  ASSUMED_NO_MATCH: 12,
  /** The rule is about another kind of request, or names other resources or prompts. */
  TARGET: 13,
} as const;
type Outcome = (typeof Outcome)[keyof typeof Outcome];

const EMPTY_LABELS: Readonly<Record<string, string>> = Object.freeze({});
const { propertyIsEnumerable } = Object.prototype;
/** EFFECTS is strictest first; rank 4 is deny. */
const EFFECT_BY_RANK: readonly Effect[] = [...EFFECTS].reverse();

/**
 * What the rules are tested against: the input, plus facts derived on first use (annotations after the bundle's
 * overrides, risk tags, the arguments as CEL values). It is also the scope CEL conditions read their variables from.
 */
export class CallFacts implements ConditionScope {
  /** Set by `testRule` when it evaluated the rule's condition. */
  whenValue: boolean | undefined;
  whenError: string | undefined;
  /** Deciding whether to list the tool: there are no arguments and no time of call. */
  readonly listing: boolean;
  #declared: ToolAnnotations | undefined | null = null;
  #riskTags: string[] | undefined;
  #hints: Record<string, boolean> | undefined;
  #args: ReadonlyMap<string, unknown> | undefined;
  /** The arguments `arg` read so far, key then CEL value: one decision's rules read the same few, often twice in a row. */
  #read: unknown[] | undefined;
  #now: Date | undefined;
  #session: ReadonlyMap<string, unknown> | undefined;

  constructor(
    readonly input: DecisionInput,
    private readonly plan: ToolPlan,
  ) {
    this.listing = input.args === undefined;
  }

  get tool(): string {
    return this.input.tool;
  }
  get server(): string {
    return this.input.server;
  }
  get principal(): string {
    return this.input.principal;
  }
  get tenant(): string {
    return this.input.tenant;
  }
  get labels(): Readonly<Record<string, string>> {
    return this.input.labels ?? EMPTY_LABELS;
  }
  get kind(): string {
    return this.input.kind ?? 'tool';
  }
  get method(): string {
    return this.input.method ?? DEFAULT_METHOD.tool;
  }
  get uri(): string {
    return this.input.uri ?? '';
  }
  get prompt(): string {
    return this.input.prompt ?? '';
  }

  /** The tool's annotations with the bundle's overrides applied. */
  get declared(): ToolAnnotations | undefined {
    if (this.#declared === null) this.#declared = overriddenAnnotations(this.input.annotations, this.plan.override);
    return this.#declared;
  }

  /** Declared by config, by the bundle, and implied by the annotations (a tool's only: other requests have none). */
  get riskTags(): readonly string[] {
    if (this.#riskTags) return this.#riskTags;
    if (this.input.kind) return (this.#riskTags = []);
    const declared = this.input.riskTags;
    const overridden = this.plan.override?.riskTags;
    const implied = impliedRiskTags(this.declared);
    // Implied tags are distinct already: only declared ones need the Set.
    this.#riskTags = declared?.length || overridden?.length ? [...new Set([...(declared ?? []), ...(overridden ?? []), ...implied])] : implied;
    return this.#riskTags;
  }

  /** The four hints as CEL sees them: always present, undeclared ones at their defaults (destructive: false). */
  get annotations(): Readonly<Record<string, boolean>> {
    const declared = this.declared;
    this.#hints ??= {
      readOnlyHint: effectiveHint(declared, 'readOnlyHint') === true,
      destructiveHint: effectiveHint(declared, 'destructiveHint') === true,
      idempotentHint: effectiveHint(declared, 'idempotentHint') === true,
      openWorldHint: effectiveHint(declared, 'openWorldHint') === true,
    };
    return this.#hints;
  }

  get args(): ReadonlyMap<string, unknown> {
    this.#args ??= (this.input.args === undefined ? new Map() : celValue(this.input.args)) as ReadonlyMap<string, unknown>;
    return this.#args;
  }

  /** `args.get(key)` without converting the other arguments (celValue reads an object's own enumerable keys). */
  arg(key: string): unknown {
    const args = this.input.args;
    if (args === undefined) return undefined;
    if (typeof args !== 'object' || args === null || Array.isArray(args)) return NOT_A_MAP;
    if (this.#args) return this.#args.get(key);
    const read = (this.#read ??= []);
    for (let i = 0; i < read.length; i += 2) if (read[i] === key) return read[i + 1];
    const value = propertyIsEnumerable.call(args, key) ? celValue(args[key]) : undefined;
    read.push(key, value);
    return value;
  }

  /** The session's facts as CEL sees them: a session with no calls, starting now, when the input carries none. */
  get session(): ReadonlyMap<string, unknown> {
    this.#session ??= sessionValue(this.input.session, this.now);
    return this.#session;
  }

  /** The input's time; the epoch when it has none, so a decision never reads the clock. */
  get now(): Date {
    this.#now ??= new Date(this.input.now ?? 0);
    return this.#now;
  }
}

/**
 * Tests one rule against one call, criteria in order (cheapest first), the condition last. `checkNames` is
 * false when the rule comes from the tool's plan, whose servers and tools already match.
 */
export function testRule(rule: CompiledRule, facts: CallFacts, checkNames: boolean): Outcome {
  facts.whenValue = undefined;
  facts.whenError = undefined;
  if (checkNames) {
    if (rule.servers && !rule.servers(facts.input.server)) return Outcome.SERVER;
    const request = requestTarget(facts.input);
    if (!request && rule.kinds.tool && rule.tools && !rule.tools(facts.input.tool)) return Outcome.TOOL;
    if (!targets(rule, facts.input.tool, request)) return Outcome.TARGET;
  }
  if (rule.tenants && !rule.tenants(facts.input.tenant)) return Outcome.TENANT;
  if (rule.principals && !rule.principals(facts.input.principal)) return Outcome.PRINCIPAL;
  if (rule.annotations) {
    const declared = facts.declared;
    for (const [key, value] of rule.annotations) if (effectiveHint(declared, key) !== value) return Outcome.ANNOTATIONS;
  }
  if (rule.riskTags && !anyOf(rule.riskTags, facts.riskTags)) return Outcome.RISK_TAGS;
  if (rule.labels) {
    const labels = facts.input.labels;
    for (const [key, values] of rule.labels) {
      if (!labels || !Object.hasOwn(labels, key) || !values.includes(labels[key])) return Outcome.LABELS;
    }
  }
  const when = rule.when;
  if (!when) return Outcome.MATCHED;
  if (facts.listing && when.readsCall) return rule.effect === 'deny' ? Outcome.ASSUMED_NO_MATCH : Outcome.ASSUMED_MATCH;
  const value = when.outcome(facts);
  if (value instanceof Thrown) {
    facts.whenError = firstLine(value.error);
    return rule.matchOnError ? Outcome.MATCHED_ON_ERROR : Outcome.WHEN_ERROR;
  }
  if (typeof value !== 'boolean') {
    facts.whenError = `the condition gave ${typeof value === 'bigint' ? 'an int' : `a ${typeof value}`}, not a bool`;
    return rule.matchOnError ? Outcome.MATCHED_ON_ERROR : Outcome.WHEN_ERROR;
  }
  facts.whenValue = value;
  return value ? Outcome.MATCHED : Outcome.WHEN_FALSE;
}

/** Whether a tag of `wanted` is in `tags`: a loop, where `some` with a closure would allocate the closure per rule. */
function anyOf(wanted: readonly string[], tags: readonly string[]): boolean {
  for (let i = 0; i < wanted.length; i++) if (tags.includes(wanted[i])) return true;
  return false;
}

/** Collects rule outcomes; `decision()` applies precedence and merges what the matching rules carry. */
export class Tally {
  private matched: CompiledRule[] | undefined;
  /** Rules whose condition threw and that grant nothing for it, but whose restrictions still apply. */
  private restricting: CompiledRule[] | undefined;
  private errors: { ruleId: string; error: string }[] | undefined;
  private rank = -1;
  /** The rules that matched, as a bit set of their positions in the plan (with a memo only). */
  private key = 0;

  /** `memo`: the plan's decisions by matching rules (see `ToolPlan.decisions`); `count` then takes positions in the plan. */
  constructor(private readonly memo?: DecisionMemo) {}

  count(rule: CompiledRule, outcome: Outcome, facts: CallFacts, position = 0): void {
    if (facts.whenError !== undefined) (this.errors ??= []).push({ ruleId: rule.id, error: facts.whenError });
    if (outcome <= Outcome.ASSUMED_MATCH) this.key |= 1 << position;
    if (outcome <= Outcome.ASSUMED_MATCH && !rule.grants) {
      // A rule without an effect: its labels and scan apply, and it takes no part in the decision.
      (this.restricting ??= []).push(rule);
    } else if (outcome <= Outcome.ASSUMED_MATCH) {
      (this.matched ??= []).push(rule);
      if (rule.rank > this.rank) this.rank = rule.rank;
    } else if (outcome === Outcome.WHEN_ERROR && restricts(rule)) {
      (this.restricting ??= []).push(rule);
    }
  }

  /**
   * The decision. The matching rules and the conditions' errors alone make it: the plan's memo keeps the one built
   * before for them, frozen, and hands it to every caller as it is (`Decision` is read-only).
   */
  decision(policy: CompiledPolicy): Decision {
    const memo = this.memo;
    const known = memo?.get(this.key, this.errors);
    if (known) return known;
    const decision = this.build(policy);
    if (memo && memo.size < MAX_DECISIONS_PER_PLAN) {
      const kept = frozen(decision);
      memo.set(this.key, kept);
      return kept;
    }
    return decision;
  }

  private build(policy: CompiledPolicy): DecisionDraft {
    const { bundle } = policy;
    const matched = this.matched;
    if (!matched) {
      const decision: DecisionDraft = { effect: bundle.default, reason: `no rule matched; the policy default is ${bundle.default}`, ruleIds: [], policySnapshot: bundle.snapshot, constraints: NO_CONSTRAINTS };
      if (this.restricting) this.restrict(decision);
      if (this.errors) decision.errors = this.errors;
      return decision;
    }
    const effect = EFFECT_BY_RANK[this.rank];
    // Strictest first; rules were counted in id order and the sort is stable.
    const ordered = matched.length === 1 ? matched : [...matched].sort((a, b) => b.rank - a.rank);
    let reason: string | undefined;
    let remediation: string | undefined;
    let constraints: Constraints = NO_CONSTRAINTS;
    const decision: DecisionDraft = { effect, reason: '', ruleIds: ordered.map((r) => r.id), policySnapshot: bundle.snapshot, constraints };
    for (const rule of ordered) {
      if (rule.rank === this.rank) {
        reason ??= rule.source.reason;
        const more = rule.source.remediation;
        if (more && !remediation?.split('\n').includes(more)) remediation = remediation ? `${remediation}\n${more}` : more;
      }
      if (rule.constraints) constraints = mergeConstraints(constraints, rule.constraints);
      if (rule.throttle) (decision.throttles ??= []).push(rule.throttle);
      if (rule.approval) (decision.approvals ??= []).push(rule.approval);
      limitSession(decision, rule);
    }
    decision.reason = reason ?? `rule ${ordered[0].id} (${effect})`;
    decision.constraints = constraints;
    if (this.restricting) this.restrict(decision);
    if (remediation) decision.remediation = remediation;
    if (this.errors) decision.errors = this.errors;
    return decision;
  }

  /** Adds the constraints and throttles of the rules whose condition threw (in id order, as counted). */
  private restrict(decision: DecisionDraft): void {
    for (const rule of this.restricting!) {
      if (rule.constraints) decision.constraints = mergeConstraints(decision.constraints, rule.constraints);
      if (rule.throttle) (decision.throttles ??= []).push(rule.throttle);
      limitSession(decision, rule);
    }
  }
}

/** Whether a rule restricts the calls it lets run: what still applies when its condition throws. */
const restricts = (rule: CompiledRule): boolean => Boolean(rule.constraints || rule.throttle || rule.repeat || rule.budget || rule.sessionLabels || rule.scan);

const SCAN_RANK = { scan: 1, warn: 2, redact: 3 } as const;

function limitSession(decision: DecisionDraft, rule: CompiledRule): void {
  if (rule.repeat) (decision.repeats ??= []).push(rule.repeat);
  if (rule.budget) (decision.budgets ??= []).push(rule.budget);
  if (rule.sessionLabels) (decision.labels ??= []).push(...rule.sessionLabels);
  if (rule.scan && (!decision.scanResult || SCAN_RANK[rule.scan] > SCAN_RANK[decision.scanResult])) {
    decision.scanResult = rule.scan;
    decision.scanRuleId = rule.id;
  }
}

/** The constraints of a decision that carries none: shared, and frozen so that nobody writes to it. */
const NO_CONSTRAINTS: Constraints = Object.freeze({});

/** A plan keeps this many decisions at most (the bench keeps 1 to 5): conditions on arguments could otherwise make a set per call. */
const MAX_DECISIONS_PER_PLAN = 16;

/** A decision while `build` assembles it: its fields and lists still written to. */
type DecisionDraft = { -readonly [K in keyof Decision]: Decision[K] extends readonly (infer Item)[] | undefined ? Item[] : Decision[K] };

/**
 * A kept decision, frozen with its lists and its merged constraints (as NO_CONSTRAINTS is): every caller is handed the
 * same object, so nobody may write to it. The items of its lists are the rules' own specs, shared as before.
 */
function frozen(decision: DecisionDraft): Decision {
  decision.constraints = frozenConstraints(decision.constraints);
  for (const key in decision) {
    const value = decision[key as keyof Decision];
    if (Array.isArray(value)) Object.freeze(value);
  }
  if (decision.errors) for (const error of decision.errors) Object.freeze(error);
  return Object.freeze(decision);
}

/** Merged constraints are read, never written: frozen, a kept decision's are shared. */
function frozenConstraints(constraints: Constraints): Constraints {
  if (Object.isFrozen(constraints)) return constraints;
  for (const value of Object.values(constraints)) if (typeof value === 'object' && value !== null) Object.freeze(value);
  return Object.freeze(constraints);
}

/** One rule as `explain` reports it. */
export function traceOf(rule: CompiledRule, outcome: Outcome, facts: CallFacts): RuleTrace {
  const trace: RuleTrace = { id: rule.id, effect: rule.effect, matched: outcome <= Outcome.ASSUMED_MATCH, why: whyText(rule, outcome, facts) };
  if (!rule.grants) trace.labelsOnly = true;
  if (rule.when && (facts.whenValue !== undefined || facts.whenError !== undefined)) {
    trace.when = { expression: rule.when.source, ...(facts.whenError !== undefined ? { error: facts.whenError } : { value: facts.whenValue }) };
  }
  return trace;
}

function whyText(rule: CompiledRule, outcome: Outcome, facts: CallFacts): string {
  const { match } = rule.source;
  const { input } = facts;
  const list = (items: readonly string[] | undefined) => `[${(items ?? []).join(', ')}]`;
  switch (outcome) {
    case Outcome.MATCHED:
      return 'matched';
    case Outcome.MATCHED_ON_ERROR:
      return `matched: its condition failed, which counts as a match for ${rule.effect}`;
    case Outcome.ASSUMED_MATCH:
      return 'matched for listing: the condition reads args or now, which a listing lacks, and a call may meet it';
    case Outcome.SERVER:
      return `server ${input.server} is not one of ${list(match.servers)}`;
    case Outcome.TOOL:
      return `tool ${input.tool} is not one of ${list(match.tools)}`;
    case Outcome.TENANT:
      return `tenant ${input.tenant} is not one of ${list(match.tenants)}`;
    case Outcome.PRINCIPAL:
      return `principal ${input.principal} is not one of ${list(match.principals)}`;
    case Outcome.ANNOTATIONS:
      return `the tool's hints ${JSON.stringify(facts.annotations)} differ from ${JSON.stringify(match.annotations)}`;
    case Outcome.RISK_TAGS:
      return `the tool's risk tags ${list(facts.riskTags)} include none of ${list(match.riskTags)}`;
    case Outcome.LABELS:
      return `the labels ${JSON.stringify(input.labels ?? {})} do not match ${JSON.stringify(match.labels)}`;
    case Outcome.WHEN_FALSE:
      return 'its condition is false';
    case Outcome.WHEN_ERROR:
      return `not matched: its condition failed, which counts as no match for ${rule.effect}${restricts(rule) ? '; its constraints, throttle, repeat and budget still apply' : ''}`;
    case Outcome.ASSUMED_NO_MATCH:
      return 'not matched for listing: the condition reads args or now, which a listing lacks, and a call may avoid it';
    case Outcome.TARGET: {
      const what = input.kind === 'resource' ? `resource ${input.uri}` : input.kind === 'prompt' ? `prompt ${input.prompt}` : 'a tool call';
      if (match.resources && input.kind === 'resource') return `${what} is not one of ${list(match.resources)}`;
      if (match.prompts && input.kind === 'prompt') return `${what} is not one of ${list(match.prompts)}`;
      return `the rule is about ${rule.kinds.tool ? 'tool calls' : match.resources && match.prompts ? 'resources and prompts' : match.resources ? 'resources' : 'prompts'}, and this is ${what}`;
    }
  }
}

/** The plan's view of a request other than a tool call: its kind and target; undefined for a tool call. */
export function requestTarget(input: DecisionInput): RequestTarget | undefined {
  if (!input.kind) return undefined;
  return { kind: input.kind, target: (input.kind === 'resource' ? input.uri : input.prompt) ?? '' };
}
