import type { Constraints } from '../protocol/constraints.ts';
import { checkArgSize } from './arg-size.ts';
import { checkEgress, checkUpstreamEgress } from './egress.ts';
import { checkPaths } from './paths.ts';

/** Whether any constraint on the arguments applies, so an unconstrained call skips enforcement entirely. */
export function constrainsArguments(c: Constraints): boolean {
  return c.maxArgBytes !== undefined || (c.paths !== undefined && c.paths.length > 0) || (c.egress !== undefined && c.egress.length > 0);
}

/**
 * Enforces the constraints on what a call may ask for, before it reaches the upstream: argument size, paths,
 * egress (of the URL arguments, and of the upstream's own URL when it is an HTTP upstream). Throws the refusal.
 */
export function enforceArguments(args: Record<string, unknown>, c: Constraints, upstream: { name: string; url?: string }): void {
  if (c.maxArgBytes !== undefined) checkArgSize(args, c.maxArgBytes);
  if (c.paths?.length) checkPaths(args, c.paths);
  if (c.egress?.length) {
    if (upstream.url) checkUpstreamEgress(upstream.name, upstream.url, c.egress);
    checkEgress(args, c.egress);
  }
}
