import type { DecisionInput } from '../kernel/decision.ts';
import { redactArguments } from '../enforcement/redact.ts';

/**
 * How much of a call's arguments its `job.decided` record keeps (config `audit.recordArguments`). Every mode keeps
 * `argsDigest` in `job.submitted`.
 *   digest    no arguments: `policy replay` skips such decisions
 *   redacted  the arguments, with the policy's `redact.args` and every secret-looking key masked (the default)
 *   full      the arguments, with only the policy's `redact.args` masked: secrets under other keys are kept
 */
export const RECORD_ARGUMENTS = ['digest', 'redacted', 'full'] as const;
export type RecordArguments = (typeof RECORD_ARGUMENTS)[number];

/**
 * The decision input as the audit trail keeps it, for `policy replay` and the console: a DecisionInput, its
 * arguments as `mode` says. The input itself when nothing needed hiding, so the common call allocates nothing.
 */
export function recordedInput(input: DecisionInput, redact: readonly string[] | undefined, mode: RecordArguments): DecisionInput {
  if (mode === 'digest') {
    const { args: _omitted, ...withoutArgs } = input;
    return withoutArgs as DecisionInput;
  }
  const args = input.args && redactArguments(input.args, redact, undefined, mode === 'redacted');
  return args === input.args ? input : { ...input, args };
}
