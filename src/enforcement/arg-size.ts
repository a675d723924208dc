import { refusal } from './refusal.ts';

/**
 * Throws GH_ERR_ARGS_TOO_LARGE when the arguments, as JSON (UTF-8), exceed `maxBytes`. The merged constraint
 * keeps only the smallest limit, not which rule set it, so the refusal names no rule.
 */
export function checkArgSize(args: Record<string, unknown>, maxBytes: number): void {
  const bytes = Buffer.byteLength(JSON.stringify(args));
  if (bytes > maxBytes) {
    throw refusal('GH_ERR_ARGS_TOO_LARGE', `The arguments are ${bytes} bytes of JSON; the policy allows at most ${maxBytes}. Send less (smaller values, fewer items) or split the call.`, {});
  }
}
