/**
 * NATS subject matching, shared by the buses: subjects are tokens split on `.`; in a pattern `*` matches one
 * token and `>` one or more at the end.
 */
export const subjectTokens = (subject: string): string[] => subject.split('.');

/** Whether `pattern` matches every subject that `inner` (a subject, or itself a pattern) matches. */
export function subjectCovers(pattern: readonly string[], inner: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === '>') return inner.length > i;
    if (i >= inner.length || inner[i] === '>') return false;
    if (pattern[i] !== '*' && pattern[i] !== inner[i]) return false;
  }
  return pattern.length === inner.length;
}
