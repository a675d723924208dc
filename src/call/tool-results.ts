import { textResult, type CallToolResult } from '../protocol/mcp.ts';
import type { ErrorCode } from '../errors.ts';
import type { RefusalDetail } from '../enforcement/refusal.ts';

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
