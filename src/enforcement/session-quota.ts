import type { Store } from '../ports.ts';
import type { SessionQuota } from '../protocol/constraints.ts';
import { counterKey } from './throttle.ts';
import { refusal } from './refusal.ts';

/**
 * How long a session's count lives after its first counted call. Sessions end without telling the Store, so
 * the count must expire on its own; a session older than this starts a fresh count.
 */
export const SESSION_QUOTA_TTL_MS = 24 * 60 * 60_000;

export interface QuotaCaller {
  tenant: string;
  principal: string;
  sessionId?: string;
}

/**
 * `maxCallsPerSession`: the calls one client session made that matched the rule, counted in the Store. A caller
 * without a session (a stateless 2026-era client, or stdio) is counted per principal instead, over the same
 * SESSION_QUOTA_TTL_MS: its "session" is everything it does in that time.
 */
export class SessionQuotas {
  constructor(private readonly store: Store) {}

  /** Counts the call against every quota; throws GH_ERR_SESSION_QUOTA if one is used up. */
  async take(quotas: readonly SessionQuota[], caller: QuotaCaller): Promise<void> {
    const counts = await Promise.all(quotas.map((q) => this.store.increment(key(q, caller), { ttlMs: SESSION_QUOTA_TTL_MS })));
    refuseUsedUp(quotas, counts, caller);
  }

  /** Throws what `take` would throw for this call now, counting nothing (a call held for a human uses up nothing). */
  async peek(quotas: readonly SessionQuota[], caller: QuotaCaller): Promise<void> {
    const counts = await Promise.all(quotas.map(async (q) => ((await this.store.get<number>(key(q, caller))) ?? 0) + 1));
    refuseUsedUp(quotas, counts, caller);
  }
}

function key(quota: SessionQuota, caller: QuotaCaller): string {
  const scope = caller.sessionId ? ['session', caller.sessionId] : ['principal', caller.principal];
  return counterKey('quota', quota.ruleId, caller.tenant, ...scope);
}

function refuseUsedUp(quotas: readonly SessionQuota[], counts: readonly number[], caller: QuotaCaller): void {
  const i = quotas.findIndex((q, k) => counts[k] > q.limit);
  if (i < 0) return;
  const { ruleId, limit } = quotas[i];
  throw refusal('GH_ERR_SESSION_QUOTA', `Rule ${ruleId} allows at most ${limit} such calls per session, and this ${caller.sessionId ? 'session' : 'caller'} has used them all. Do not retry in this session.`, { ruleId });
}
