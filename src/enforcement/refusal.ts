import { GatewayError, type ErrorCode } from '../errors.ts';
import type { RefusalDetail } from '../protocol/tool-results.ts';

export type { RefusalDetail };

/** The codes of calls refused by an enforced constraint: such a call never reached its upstream. */
export const REFUSAL_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['GH_ERR_ARGS_TOO_LARGE', 'GH_ERR_PATH_DENIED', 'GH_ERR_EGRESS_DENIED', 'GH_ERR_THROTTLED', 'GH_ERR_SESSION_QUOTA', 'GH_ERR_REPEATED_CALL', 'GH_ERR_BUDGET_EXHAUSTED']);

export function refusal(code: ErrorCode, message: string, detail: RefusalDetail): GatewayError {
  return new GatewayError(code, message, { data: { ...detail } });
}

export function isRefusal(error: GatewayError): boolean {
  return REFUSAL_CODES.has(error.code);
}

/** A value quoted in a refusal, kept short: the model sent it, but a megabyte of it helps nobody. */
export function quoted(value: string): string {
  return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value);
}
