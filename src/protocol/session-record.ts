/**
 * What Gatehouse keeps about one client session (or, for per-principal budgets, one principal's day): the facts
 * rules read as `session`, and the counts budgets and the loop breaker check. Plain JSON, so a Redis adapter can
 * store it as it is. Every list is bounded (see src/session/admission.ts).
 */
export interface SessionRecord {
  /** The session key (src/session/session-key.ts): what CEL reads as `session.id`. */
  id: string;
  /** When the first call of the session ran (ms since the epoch). */
  startedAt: number;
  /** Calls that ran (passed the policy, the approvals and every limit). */
  calls: number;
  /** Namespaced tools called, in first-call order. */
  tools: string[];
  /** Risk tags of the calls that ran. */
  riskTags: string[];
  /**
   * Labels set on the session, each with the call and rule that set it, so that an approver can be shown why.
   * Nothing sets them yet: the rules and the result scanner that will are issue 15's next items.
   */
  labels: SessionLabel[];
  /** Calls that ran on a human's approval. */
  approvals: number;
  /** `clientInfo` of the client that made the first call, when it sent one. */
  client?: { name: string; version: string };
  /** Budget counts, by rule id. */
  budgets: Record<string, BudgetUse>;
  /**
   * The loop breaker's memory, by `<ruleId> <tool> <last 16 hex digits of argsDigest>`: when each such call ran (ms) within the rule's
   * window, and when the entry can be forgotten (its newest time plus the window).
   */
  repeats: Record<string, { times: number[]; until: number }>;
}

export interface SessionLabel {
  name: string;
  /** The job whose call (or result) set it. */
  jobId: string;
  /** The rule that set it, or the scanner (`scanner`). */
  by: string;
  at: number;
}

/** What one budget rule has counted in one session, or for one principal in one day. */
export interface BudgetUse {
  calls: number;
  /** Bytes of the results that came back (JSON of their content). */
  outputBytes: number;
  /** Time from dispatch to result (ms). */
  upstreamMs: number;
  /** Distinct namespaced tools called. */
  tools: string[];
}
