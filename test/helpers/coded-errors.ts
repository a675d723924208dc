import { expect } from 'vitest';
import type { ErrorCode } from '../../src/errors.ts';

// Matchers for thrown GatewayErrors, for `toThrow(…)` and `rejects.toThrow(…)`: they look at the code and the
// structured data (a file, a line, a key path, a rule id, a reason), never at the message's wording.

/** A GatewayError with this code, and at least these `data` fields (each compared exactly). */
export const coded = (code: ErrorCode, data?: Record<string, unknown>) => expect.objectContaining({ code, ...(data ? { data: expect.objectContaining(data) } : {}) });

/** A bad policy file's error: GH_ERR_POLICY_INVALID naming the file, with exactly these issues (key path and line). */
export const invalidPolicy = (file: string, ...issues: Array<{ path: PropertyKey[]; line?: number }>) =>
  coded('GH_ERR_POLICY_INVALID', { file, issues: issues.map((issue) => expect.objectContaining(issue)) });
