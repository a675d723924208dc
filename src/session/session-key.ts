import type { Caller } from '../protocol/call.ts';
import { counterKey } from '../enforcement/throttle.ts';

/** Where a 2026-07-28 client may name its session: `params._meta["gatehouse/session"]`, a string of 1-128 characters. */
export const META_SESSION = 'gatehouse/session';
const MAX_META_SESSION = 128;

/**
 * Which session a call belongs to, as the session facts are keyed (always within the caller's tenant):
 * - a 2025 client (HTTP or stdio): its MCP session (`Mcp-Session-Id`);
 * - a 2026-07-28 client that names one in `_meta["gatehouse/session"]`: that name, within the principal (a
 *   client cannot read or spend another principal's session by naming it);
 * - any other: the principal's window, `sessions.window` long and aligned to multiples of it since the epoch, so
 *   a stateless client's session is everything its principal does in that window.
 */
export function sessionKeyOf(caller: Caller, meta: Record<string, unknown> | undefined, now: number, windowMs: number): string {
  if (caller.sessionId) return counterKey('s', caller.tenant, caller.sessionId);
  const named = meta?.[META_SESSION];
  if (typeof named === 'string' && named.length > 0 && named.length <= MAX_META_SESSION) return counterKey('m', caller.tenant, caller.principal, named);
  return counterKey('w', caller.tenant, caller.principal, String(now - (now % windowMs)));
}

/** The record of a principal's UTC day, where `per: principal` budgets count. */
export function principalDayKey(caller: Caller, now: number): string {
  return counterKey('d', caller.tenant, caller.principal, new Date(now).toISOString().slice(0, 10));
}

/** How long a principal's day record lives: past the end of its day, with room for clocks that disagree. */
export const PRINCIPAL_DAY_TTL_MS = 48 * 60 * 60_000;
