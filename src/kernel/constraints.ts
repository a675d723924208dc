import type { Constraints } from '../protocol/constraints.ts';

const minOf = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.min(a, b);

const union = (a: readonly string[] = [], b: readonly string[] = []): string[] => [...new Set([...a, ...b])];

/** Merges two constraint sets to the most restrictive of each limit. Commutative and associative. */
export function mergeConstraints(a: Constraints, b: Constraints): Constraints {
  const out: Constraints = {};
  const timeoutMs = minOf(a.timeoutMs, b.timeoutMs);
  const maxOutputBytes = minOf(a.maxOutputBytes, b.maxOutputBytes);
  const maxArgBytes = minOf(a.maxArgBytes, b.maxArgBytes);
  if (timeoutMs !== undefined) out.timeoutMs = timeoutMs;
  if (maxOutputBytes !== undefined) out.maxOutputBytes = maxOutputBytes;
  if (maxArgBytes !== undefined) out.maxArgBytes = maxArgBytes;
  if (a.paths || b.paths) out.paths = byRuleId([...(a.paths ?? []), ...(b.paths ?? [])]);
  if (a.egress || b.egress) out.egress = byRuleId([...(a.egress ?? []), ...(b.egress ?? [])]);
  if (a.redact || b.redact) {
    out.redact = { args: union(a.redact?.args, b.redact?.args).sort(), result: union(a.redact?.result, b.redact?.result).sort() };
  }
  if (a.maxCallsPerSession || b.maxCallsPerSession) out.maxCallsPerSession = byRuleId([...(a.maxCallsPerSession ?? []), ...(b.maxCallsPerSession ?? [])]);
  return out;
}

/** One entry per rule, sorted by rule id, so merge order never changes the result. */
function byRuleId<T extends { ruleId: string }>(items: T[]): T[] {
  const seen = new Map<string, T>();
  for (const item of items) seen.set(item.ruleId, item);
  return [...seen.values()].sort((x, y) => (x.ruleId < y.ruleId ? -1 : x.ruleId > y.ruleId ? 1 : 0));
}
