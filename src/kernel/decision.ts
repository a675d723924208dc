import type { ToolAnnotations } from '../protocol/mcp.ts';
import type { Constraints } from '../protocol/constraints.ts';
import type { Effect } from './effect.ts';
import type { RequestKind } from './request-kind.ts';

/** What the kernel decides on: the whole call, not just the tool's name. Plain JSON, so it can be recorded and replayed. */
export interface DecisionInput {
  tenant: string;
  principal: string;
  /** The upstream's name. */
  server: string;
  /**
   * The namespaced tool name, `<server>__<tool>`; for a request other than a tool call, its method and target
   * (`resources/read file:///a.md`, see `requestName`).
   */
  tool: string;
  /** What the request is about; absent for a tool call, so that recorded tool decisions keep their shape. */
  kind?: Exclude<RequestKind, 'tool'>;
  /** The MCP method of a request other than a tool call (`resources/read`, `prompts/get`, `completion/complete` …). */
  method?: string;
  /** A resource request's URI (a template's, when a listing decides on a resource template). */
  uri?: string;
  /** A prompt request's namespaced prompt name, `<server>__<prompt>`. */
  prompt?: string;
  /** The tool's annotations after config overrides (the bundle's own overrides are applied by the kernel); none for other requests. */
  annotations: ToolAnnotations | undefined;
  /** Risk tags declared for the tool by config (the kernel adds the bundle's and those implied by annotations). */
  riskTags?: string[];
  /** Labels of the upstream, from config. */
  labels?: Record<string, string>;
  /**
   * For an HTTP upstream, its URL's origin (scheme, host, port: no credentials, path or query). Egress constraints
   * check it (an HTTP upstream is itself egress); the rules do not read it.
   */
  upstreamUrl?: string;
  /** The call's arguments; undefined when deciding whether to list a tool at all. */
  args: Record<string, unknown> | undefined;
  /** The decision time (ms since the epoch), which CEL sees as `now`. Recorded, so a replay uses the same time. */
  now?: number;
  /**
   * Set when the tool's definition is not the pinned one and its upstream says `onDefinitionChange: approve`:
   * every call then needs a human's approval (see definition-change.ts) until an operator accepts the change.
   */
  definitionChanged?: DefinitionChange;
  /**
   * The session's facts before this call, which CEL sees as `session`; present only when a rule of the policy reads
   * `session` (an absent one reads as a session with no calls). Recorded, so a replay decides with the same facts.
   */
  session?: SessionView;
}

/** A tool definition that differs from its pin: the pinned and current digests, and the top-level fields that differ. */
export interface DefinitionChange {
  pinned: string;
  current: string;
  /** Empty when the pin is a digest only (a pack's): there is no definition to compare with. */
  fields: string[];
}

/** What a rule sees of the session a call belongs to (CEL `session`). Plain JSON. */
export interface SessionView {
  id: string;
  /** Calls of the session that ran before this one. */
  calls: number;
  /** Namespaced tools those calls called. */
  tools: string[];
  /** Risk tags of those calls. */
  riskTags: string[];
  /** Labels set on the session (by rules' `labels` and `labelResult`, and by the result scanner). */
  labels: string[];
  /** When the session's first call ran (ms since the epoch); for the session's first call, its own time. */
  startedAt: number;
  /** Calls of the session that ran on a human's approval. */
  approvals: number;
  /** The client's `clientInfo`, empty strings when it sent none. */
  client: { name: string; version: string };
}

/** A matching rule's `repeat`: the same tool with the same arguments at most `limit` times per `windowMs`, per session. */
export interface RepeatSpec {
  ruleId: string;
  limit: number;
  windowMs: number;
}

/** A matching rule's `budget`: what the calls it matches may use, per session or per principal and UTC day. */
export interface BudgetSpec {
  ruleId: string;
  per: 'session' | 'principal';
  calls?: number;
  outputBytes?: number;
  upstreamTimeMs?: number;
  distinctTools?: number;
}

/** A label a matching rule sets on the session: when its call runs (`labels`) or when its result comes back (`labelResult`). */
export interface LabelSpec {
  ruleId: string;
  name: string;
  on: 'run' | 'result';
}

/** What the result scanner does with what it finds: `scan` labels and audits, `warn` also wraps it in a warning, `redact` replaces it. */
export type ScanMode = 'scan' | 'warn' | 'redact';

/** A rate limit from a matching `throttle` rule, applied with state outside the (pure) kernel. */
export interface ThrottleSpec {
  ruleId: string;
  limit: number;
  windowMs: number;
  per: 'principal' | 'tenant' | 'tool';
}

/** How a matching `require_approval` rule wants its approval handled (merged across rules by the approvals code). */
export interface ApprovalSpec {
  ruleId: string;
  ttlMs?: number;
  approvers?: string[];
  selfApprove?: boolean;
  quorum?: number;
  onApprove?: 'wait_for_retry' | 'execute';
}

export interface Decision {
  readonly effect: Effect;
  readonly reason: string;
  /** Shown to the model on deny: what to do instead. From the deciding rules. */
  readonly remediation?: string;
  /** The ids of every rule that matched, strictest first. Empty when the default applied. */
  readonly ruleIds: readonly string[];
  readonly policySnapshot: string;
  readonly constraints: Constraints;
  /** Every matching throttle rule's limit; applied whenever the effect is not `deny`. */
  readonly throttles?: readonly ThrottleSpec[];
  /** The approval options of the matching `require_approval` rules. */
  readonly approvals?: readonly ApprovalSpec[];
  /** Every matching rule's loop breaker; applied, like throttles, whenever the effect is not `deny`. */
  readonly repeats?: readonly RepeatSpec[];
  /** Every matching rule's budget; applied whenever the effect is not `deny`. */
  readonly budgets?: readonly BudgetSpec[];
  /** Every matching rule's session labels; set when the call runs or its result comes back. */
  readonly labels?: readonly LabelSpec[];
  /** The strictest `scanResult` of the matching rules (redact, then warn, then scan); absent: not scanned. */
  readonly scanResult?: ScanMode;
  /** The rule whose `scanResult` applies, for the audit record. */
  readonly scanRuleId?: string;
  /** Conditions that threw while deciding, by rule id (a thrown `when` matches deny/require_approval, not allow). */
  readonly errors?: readonly { readonly ruleId: string; readonly error: string }[];
}

/** One rule as `explain` saw it. */
export interface RuleTrace {
  id: string;
  effect: Effect;
  matched: boolean;
  /** Written without an effect: it only labels and scans, and takes no part in the decision (`effect` is a placeholder). */
  labelsOnly?: true;
  /** Why it did or did not match: the first failing criterion, or "matched". */
  why: string;
  /** The `when` condition, if the rule has one and it was evaluated. */
  when?: { expression: string; value?: unknown; error?: string };
}

export interface Explanation {
  decision: Decision;
  /** Every rule of the bundle, in id order. */
  rules: RuleTrace[];
}
