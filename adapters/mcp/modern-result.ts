import { ENVELOPE_KEYS } from '../../src/protocol/modern-envelope.ts';

/**
 * A 2026-07-28 upstream's result in the shape the rest of Gatehouse reads (the 2025 one): a complete result loses
 * the revision's `resultType`, cache hints and the upstream's serverInfo (the front adds its own for its modern
 * clients). An `input_required` result is kept whole: it is relayed, not unwrapped.
 */
export function asPlainResult(result: Record<string, unknown>): Record<string, unknown> {
  if (result.resultType !== 'complete' && result.resultType !== undefined) return result;
  const { resultType: _type, ttlMs: _ttl, cacheScope: _scope, ...plain } = result;
  const meta = plain._meta as Record<string, unknown> | undefined;
  if (meta && ENVELOPE_KEYS.serverInfo in meta) {
    const { [ENVELOPE_KEYS.serverInfo]: _info, ...rest } = meta;
    if (Object.keys(rest).length > 0) plain._meta = rest;
    else delete plain._meta;
  }
  return plain;
}
