import { textResult, type CallToolResult } from './mcp.ts';
import type { ErrorCode } from '../errors.ts';

/** What a refusal names, for the model and for `_meta['gatehouse/error']`. */
export interface RefusalDetail {
  /** The rule whose constraint refused the call. */
  ruleId?: string;
  /** Where in the arguments the offending value was (`files.1`, `auth.url`). */
  argument?: string;
  /** For a throttle or the loop breaker: how long until the call would be admitted. */
  retryAfterMs?: number;
  /** For a budget: what is left of each of its limits (calls, outputBytes, upstreamTimeMs, distinctTools). */
  left?: Record<string, number>;
  /** For a budget: whose it is (`session`, or `principal` for the principal's day). */
  per?: string;
}

/** Which upstream a call could not reach, and the last stderr lines of its server when it died. */
export interface UpstreamDown {
  upstream: string;
  stderr?: string[];
}

/** A tool result the model reads as a failure: the message, the code in brackets, and the code in `_meta`. */
export function errorResult(code: ErrorCode, message: string, meta?: Record<string, unknown>, detail?: RefusalDetail | { remediation: string } | UpstreamDown): CallToolResult {
  return textResult(`${message} [${code}]`, true, { ...meta, 'gatehouse/error': { code, ...detail } });
}

export function withJobMeta(result: CallToolResult, jobMeta: Record<string, unknown>): CallToolResult {
  return { ...result, _meta: { ...(result._meta ?? {}), 'gatehouse/job': jobMeta } };
}
