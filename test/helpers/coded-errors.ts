import { expect } from 'vitest';
import { isGatewayError, type ErrorCode } from '../../src/errors.ts';

// Matchers for thrown GatewayErrors, for `toThrow(…)` and `rejects.toThrow(…)`: they look at the code and the
// structured data (a file, a line, a key path, a rule id, a reason), never at the message's wording.

/** A GatewayError with this code, and at least these `data` fields (each compared exactly). */
export const coded = (code: ErrorCode, data?: Record<string, unknown>) => expect.objectContaining({ code, ...(data ? { data: expect.objectContaining(data) } : {}) });

/** A bad policy file's error: GH_ERR_POLICY_INVALID with exactly these problems (each in `file`, with key path and line). */
export const invalidPolicy = (file: string, ...issues: Array<{ path: PropertyKey[]; line?: number }>) =>
  coded('GH_ERR_POLICY_INVALID', { problems: issues.map((issue) => expect.objectContaining({ file, ...issue })) });

/** What a reader says of its input: its answer, the reason in a GatewayError's data, or any other exception's text. */
export function outcome(read: (input: string) => unknown, input: string): unknown {
  try {
    return read(input);
  } catch (err) {
    return isGatewayError(err) ? `refused: ${String(err.data?.reason)}` : `threw ${String(err)}`;
  }
}
