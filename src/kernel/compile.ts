import type { PolicyBundle } from './bundle.ts';
import type { PolicyRule, ToolOverride } from './policy-schema.ts';
import type { ApprovalSpec, BudgetSpec, Decision, LabelSpec, RepeatSpec, ScanMode, ThrottleSpec } from './decision.ts';
import type { Constraints } from '../protocol/constraints.ts';
import { RANK, type Effect } from './effect.ts';
import type { HintName } from './hints.ts';
import { GatewayError } from '../errors.ts';
import { compileGlob } from './glob.ts';
import { compileCondition, type Condition } from './cel.ts';
import { mergeToolOverrides } from './tool-overrides.ts';
import type { RequestKind } from './request-kind.ts';
import { DecisionMemo } from './decision-memo.ts';

type NameMatcher = (name: string) => boolean;

export interface CompiledRule {
  readonly id: string;
  /** Position in the bundle's id order. */
  readonly index: number;
  readonly effect: Effect;
  /** deny 4 … allow 0. */
  readonly rank: number;
  readonly source: PolicyRule;
  readonly constraints: Constraints | undefined;
  readonly throttle: ThrottleSpec | undefined;
  readonly approval: ApprovalSpec | undefined;
  readonly repeat: RepeatSpec | undefined;
  readonly budget: BudgetSpec | undefined;
  /** The session labels it sets (`labels`, `labelResult`). */
  readonly sessionLabels: readonly LabelSpec[] | undefined;
  /** Its `scanResult`, when it turns the scanner on. */
  readonly scan: ScanMode | undefined;
  /** False for a rule written without an effect: when it matches, it labels and scans, and decides nothing. */
  readonly grants: boolean;
  /** A `when` that throws counts as a match for deny and require_approval, as no match for the others. */
  readonly matchOnError: boolean;
  readonly servers: NameMatcher | undefined;
  /** The kinds of request the rule is about (see `kindsOf`). */
  readonly kinds: Readonly<Record<RequestKind, boolean>>;
  readonly tools: NameMatcher | undefined;
  readonly resources: NameMatcher | undefined;
  readonly prompts: NameMatcher | undefined;
  readonly tenants: NameMatcher | undefined;
  readonly principals: NameMatcher | undefined;
  readonly annotations: readonly (readonly [HintName, boolean])[] | undefined;
  readonly riskTags: readonly string[] | undefined;
  readonly labels: readonly (readonly [string, readonly string[]])[] | undefined;
  readonly when: Condition | undefined;
}

/** What applies to one namespaced tool name: computed once per name, then memoised. */
export interface ToolPlan {
  /** The server it was planned for: a tool call's plan is found by its tool name alone, then checked against it. */
  readonly server: string;
  /** The rules whose servers and tools match, in id order. */
  readonly rules: readonly CompiledRule[];
  /** Every bundle override whose pattern matches the tool, merged; undefined when none does. */
  readonly override: ToolOverride | undefined;
  /** Whether one of these rules' conditions reads `session`: a call of another tool is decided without its facts. */
  readonly readsSession: boolean;
  /**
   * The decisions built so far, by the set of rules that matched (bit i: `rules[i]`), for calls where no condition
   * threw: a decision follows from its matching rules alone, so the same set gives the same (frozen) decision.
   * Undefined when the plan has too many rules for a bit set.
   */
  readonly decisions: DecisionMemo | undefined;
}

/** A request other than a tool call, as plans see it: its kind and target (the URI, or the namespaced prompt). */
export interface RequestTarget {
  kind: Exclude<RequestKind, 'tool'>;
  target: string;
}

export interface CompiledPolicy {
  readonly bundle: PolicyBundle;
  /** Every rule, in id order. */
  readonly rules: readonly CompiledRule[];
  /** Whether a condition reads `session`: only then are a call's session facts loaded before it is decided. */
  readonly readsSession: boolean;
  /** Whether the policy needs session state at all: a rule reads `session`, has a `repeat` or a `budget`, sets labels or scans results. */
  readonly usesSession: boolean;
  /** The plan for a tool call (`request` undefined) or another request, by the input's server and `tool`. */
  planFor(server: string, tool: string, request?: RequestTarget): ToolPlan;
}

const MAX_PLANS = 10_000;
/** A plan memoises its decisions by a bit set of its rules: 30 bits stay a small integer. */
const MAX_MEMO_RULES = 30;

/**
 * Compiles a bundle once: globs become matchers, conditions are parsed and type-checked, and rules are indexed by
 * server and tool name. The plan for a tool is memoised per server and tool name.
 */
export function compilePolicy(bundle: PolicyBundle): CompiledPolicy {
  const shared = new Shared();
  const rules = bundle.rules.map((rule, index) => compileRule(rule, index, shared));
  // Rules naming exact servers go in per-server buckets, else rules naming exact tools in per-tool buckets;
  // the rest (globs, or no names) are checked for every tool. Each tool's plan is computed once.
  const byServer = new Map<string, CompiledRule[]>();
  const byTool = new Map<string, CompiledRule[]>();
  const unindexed: CompiledRule[] = [];
  const exact = (names: readonly string[] | undefined): names is string[] => names !== undefined && names.every((n) => !/[*?]/.test(n));
  const file = (index: Map<string, CompiledRule[]>, names: string[], rule: CompiledRule) => {
    for (const name of new Set(names)) (index.get(name) ?? index.set(name, []).get(name)!).push(rule);
  };
  for (const rule of rules) {
    const { servers, tools } = rule.source.match;
    if (exact(servers)) file(byServer, servers, rule);
    else if (exact(tools)) file(byTool, tools, rule);
    else unindexed.push(rule);
  }
  const overrides = Object.entries(bundle.tools).map(([pattern, override]) => [compileGlob(pattern), override] as const);
  // A tool call's plan by its tool name alone (`srv__read_file` names its server): one lookup per decision. Other
  // requests, and a tool name met again under another server, are found by server, then kind and target.
  const toolPlans = new Map<string, ToolPlan>();
  const plans = new Map<string, Map<string, ToolPlan>>();
  let planned = 0;
  const readsSession = rules.some((r) => r.when?.readsSession);
  return {
    bundle,
    rules,
    readsSession,
    usesSession: readsSession || rules.some((r) => r.repeat || r.budget || r.sessionLabels || r.scan),
    planFor(server, tool, request) {
      if (!request) {
        const plan = toolPlans.get(tool);
        if (plan !== undefined && plan.server === server) return plan;
      }
      const key = request ? `\0${request.kind}\0${tool}` : tool;
      let forServer = plans.get(server);
      let plan = forServer?.get(key);
      if (plan) return plan;
      if (planned >= MAX_PLANS) {
        toolPlans.clear(); // tool names and URIs come from upstreams and callers; bound the memo
        plans.clear();
        planned = 0;
        forServer = undefined;
      }
      const candidates = [...(byServer.get(server) ?? []), ...(request ? [] : (byTool.get(tool) ?? [])), ...unindexed]
        .filter((r) => (!r.servers || r.servers(server)) && targets(r, tool, request))
        .sort((a, b) => a.index - b.index);
      // The bundle's `tools:` overrides are facts about tools: other requests have none.
      let override: ToolOverride | undefined;
      if (!request) for (const [matches, o] of overrides) if (matches(tool)) override = override ? mergeToolOverrides(override, o) : o;
      plan = { server, rules: candidates, override, readsSession: candidates.some((r) => r.when?.readsSession === true), decisions: candidates.length <= MAX_MEMO_RULES ? new DecisionMemo() : undefined };
      if (!request && !toolPlans.has(tool)) toolPlans.set(tool, plan);
      else {
        if (!forServer) plans.set(server, (forServer = new Map()));
        forServer.set(key, plan);
      }
      planned++;
      return plan;
    },
  };
}

/** Whether a rule's kinds and name globs (tools, resources or prompts) take in this request. */
export function targets(rule: CompiledRule, tool: string, request: RequestTarget | undefined): boolean {
  if (!request) return rule.kinds.tool && (!rule.tools || rule.tools(tool));
  if (!rule.kinds[request.kind]) return false;
  const names = request.kind === 'resource' ? rule.resources : rule.prompts;
  return !names || names(request.target);
}

/**
 * Which kinds of request a rule is about: one that names tools, annotations or risk tags is about tool calls; one
 * that names resources or prompts, about those; one that names none of these, about every request.
 */
function kindsOf(match: PolicyRule['match']): Record<RequestKind, boolean> {
  const aboutTools = Boolean(match.tools || match.annotations || match.riskTags);
  const aboutOthers = Boolean(match.resources || match.prompts);
  return {
    tool: !aboutOthers,
    resource: !aboutTools && (Boolean(match.resources) || !match.prompts),
    prompt: !aboutTools && (Boolean(match.prompts) || !match.resources),
  };
}

/**
 * The criteria of one bundle's rules, compiled once per distinct text and shared by the rules that write the same
 * (`tenants: [t1, t2]` on every server's rule): a decision then reads one matcher that stays in the cache, not one
 * per rule. Matchers and these lists are never written after compiling.
 */
class Shared {
  readonly #matchers = new Map<string, NameMatcher>();
  readonly #lists = new Map<string, unknown>();
  readonly #names = new Map<string, string>();

  matcher(patterns: readonly string[] | undefined): NameMatcher | undefined {
    if (!patterns) return undefined;
    const key = JSON.stringify(patterns);
    let matcher = this.#matchers.get(key);
    if (!matcher) this.#matchers.set(key, (matcher = anyOf(patterns.map((p) => this.#name(p)))!));
    return matcher;
  }

  /** One string object per name: `bob` in 500 rules' lists is then one string to compare with, not 500 cold copies. */
  #name(text: string): string {
    const known = this.#names.get(text);
    if (known !== undefined) return known;
    this.#names.set(text, text);
    return text;
  }

  list<T>(items: T | undefined): T | undefined {
    if (items === undefined) return undefined;
    const key = JSON.stringify(items);
    if (!this.#lists.has(key)) this.#lists.set(key, items);
    return this.#lists.get(key) as T;
  }
}

function compileRule(rule: PolicyRule, index: number, shared: Shared): CompiledRule {
  const { match } = rule;
  // The fields a decision reads of every rule of its plan come first, so they share the object's first cache lines:
  // with thousands of rules a decision's cost is mostly memory reads.
  return {
    tenants: shared.matcher(match.tenants),
    principals: shared.matcher(match.principals),
    annotations: shared.list(match.annotations && nonEmpty(Object.entries(match.annotations) as [HintName, boolean][])),
    riskTags: shared.list(match.riskTags),
    labels: shared.list(match.labels && nonEmpty(Object.entries(match.labels))),
    when: rule.when === undefined ? undefined : condition(rule.id, rule.when),
    matchOnError: rule.effect === 'deny' || rule.effect === 'require_approval',
    grants: rule.grants !== false,
    rank: RANK[rule.effect],
    effect: rule.effect,
    id: rule.id,
    index,
    source: rule,
    constraints: rule.constraints && Object.keys(rule.constraints).length > 0 ? rule.constraints : undefined,
    throttle: rule.throttle && { ruleId: rule.id, ...rule.throttle },
    approval: rule.effect === 'require_approval' ? { ruleId: rule.id, ...rule.approval } : undefined,
    repeat: rule.repeat && { ruleId: rule.id, ...rule.repeat },
    budget: rule.budget && { ruleId: rule.id, ...rule.budget },
    sessionLabels: labelSpecs(rule),
    scan: rule.scanResult || undefined,
    servers: shared.matcher(match.servers),
    kinds: kindsOf(match),
    tools: shared.matcher(match.tools),
    resources: shared.matcher(match.resources),
    prompts: shared.matcher(match.prompts),
  };
}

function labelSpecs(rule: PolicyRule): LabelSpec[] | undefined {
  const specs = [...(rule.labels ?? []).map((name) => ({ ruleId: rule.id, name, on: 'run' as const })), ...(rule.labelResult ?? []).map((name) => ({ ruleId: rule.id, name, on: 'result' as const }))];
  return nonEmpty(specs);
}

function condition(ruleId: string, source: string): Condition {
  try {
    return compileCondition(source);
  } catch (err) {
    throw new GatewayError('GH_ERR_POLICY_INVALID', `rule ${ruleId}: when: ${(err as Error).message}`, { data: { ruleId } });
  }
}

function anyOf(patterns: readonly string[] | undefined): NameMatcher | undefined {
  if (!patterns) return undefined;
  if (patterns.length === 1) return compileGlob(patterns[0]);
  // Exact names in a set, the globs after them: a list of tenants or principals costs one lookup.
  const exact = new Set(patterns.filter((p) => !/[*?]/.test(p)));
  const globs = patterns.filter((p) => /[*?]/.test(p)).map(compileGlob);
  if (globs.length === 0) return (name) => exact.has(name);
  if (exact.size === 1 && globs.length === 1) {
    // `[bob, "team-*"]`: two comparisons, where a Set would be one more object to read per decision.
    const [only] = exact;
    const [glob] = globs;
    return (name) => name === only || glob(name);
  }
  return (name) => {
    if (exact.has(name)) return true;
    for (const matches of globs) if (matches(name)) return true;
    return false;
  };
}

const nonEmpty = <T>(items: T[]): T[] | undefined => (items.length > 0 ? items : undefined);
