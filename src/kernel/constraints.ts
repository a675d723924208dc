/** Limits the executor enforces on an allowed call. Absent means unlimited. */
export interface Constraints {
  /** The upstream must answer within this many ms (restarted by progress). */
  timeoutMs?: number;
  /** A larger result is truncated, with a marker the model can read. */
  maxOutputBytes?: number;
}

/** Merges two constraint sets to the most restrictive of each limit. */
export function mergeConstraints(a: Constraints, b: Constraints): Constraints {
  const out: Constraints = { ...a };
  if (b.timeoutMs !== undefined) out.timeoutMs = out.timeoutMs === undefined ? b.timeoutMs : Math.min(out.timeoutMs, b.timeoutMs);
  if (b.maxOutputBytes !== undefined) {
    out.maxOutputBytes = out.maxOutputBytes === undefined ? b.maxOutputBytes : Math.min(out.maxOutputBytes, b.maxOutputBytes);
  }
  return out;
}
