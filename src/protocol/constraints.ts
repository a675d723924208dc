/**
 * Limits the executor enforces on an allowed call, merged from every matching rule to the most restrictive
 * (`mergeConstraints` in src/kernel/). Absent means unlimited. The merged form is plain JSON: it travels in the job
 * context to whichever executor (in-process or a remote worker) runs the call.
 */
export interface Constraints {
  /** The upstream must answer within this many ms (restarted by progress). Merged: the minimum. */
  timeoutMs?: number;
  /** A larger result is truncated, with a marker the model can read. Merged: the minimum. */
  maxOutputBytes?: number;
  /** The call's arguments, as JSON, may be at most this many bytes. Merged: the minimum. */
  maxArgBytes?: number;
  /** Every set must pass (one per rule that set `paths`), so a merge can only narrow what is allowed. */
  paths?: PathConstraint[];
  /** Every set must pass (one per rule that set `egress`). */
  egress?: EgressConstraint[];
  /** Field paths or `/regex/flags` to redact. Merged: the union. */
  redact?: { args: string[]; result: string[] };
  /** Per-rule quotas on the calls one client session may make. Merged: all of them apply. */
  maxCallsPerSession?: SessionQuota[];
}

export interface PathConstraint {
  ruleId: string;
  /** The argument names (or dotted paths) holding paths; absent means the usual names (path, file, dir, …). */
  args?: string[];
  /** A path must lie under one of these (glob patterns on the lexically normalised absolute path). */
  allow?: string[];
  /** A path under any of these is refused, even when `allow` admits it. */
  deny?: string[];
}

export interface EgressConstraint {
  ruleId: string;
  /** The argument names (or dotted paths) holding URLs; absent means every string argument that parses as a URL. */
  args?: string[];
  /** Host patterns (`example.com`, `*.example.com`, `10.0.0.0/8`, `[::1]`); anything else is refused. */
  allowHosts: string[];
}

export interface SessionQuota {
  ruleId: string;
  limit: number;
}
