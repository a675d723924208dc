import type { Store } from '../ports.ts';
import type { SessionQuota } from '../kernel/constraints.ts';
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
    const scope = caller.sessionId ? ['session', caller.sessionId] : ['principal', caller.principal];
    const counts = await Promise.all(quotas.map((q) => this.store.increment(counterKey('quota', q.ruleId, caller.tenant, ...scope), { ttlMs: SESSION_QUOTA_TTL_MS })));
    const i = quotas.findIndex((q, k) => counts[k] > q.limit);
    if (i >= 0) {
      const { ruleId, limit } = quotas[i];
      throw refusal('GH_ERR_SESSION_QUOTA', `Rule ${ruleId} allows at most ${limit} such calls per session, and this ${caller.sessionId ? 'session' : 'caller'} has used them all. Do not retry in this session.`, { ruleId });
    }
  }
}
