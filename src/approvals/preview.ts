import { redactArguments } from '../enforcement/redact.ts';

const MAX_PREVIEW = 600;
const MASK = '[redacted]';

/**
 * A short rendering of the arguments for the human deciding. Values the policy's `redact.args` names, and values
 * under keys that look secret, are masked: approval records are readable by every approver and must not become
 * a place where secrets leak.
 */
export function previewArguments(args: Record<string, unknown>, redact?: readonly string[]): string {
  const text = JSON.stringify(redactArguments(args, redact, MASK));
  return text.length > MAX_PREVIEW ? `${text.slice(0, MAX_PREVIEW)}… (${text.length} chars)` : text;
}
