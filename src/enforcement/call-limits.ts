import type { Clock, Store } from '../ports.ts';
import type { CallLogFields, Logger } from '../log.ts';
import type { Decision } from '../kernel/decision.ts';
import { asGatewayError, type GatewayError } from '../errors.ts';
import { RateLimiter } from './throttle.ts';
import { SessionQuotas, type QuotaCaller } from './session-quota.ts';
import { isRefusal } from './refusal.ts';

/**
 * A decision's throttles and session quotas, counted in the Store for one call: `take` counts it, `peek` only asks
 * whether they would admit it (a call held for a human uses up nothing). Fails closed: a count that cannot be read
 * refuses the call.
 */
export class CallLimits {
  private readonly limiter: RateLimiter;
  private readonly quotas: SessionQuotas;

  constructor(
    store: Store,
    clock: Pick<Clock, 'now'>,
    private readonly log: Logger,
  ) {
    this.limiter = new RateLimiter(store, clock);
    this.quotas = new SessionQuotas(store);
  }

  /** Whether the decision counts anything at all: most do not, and then the call pays nothing here. */
  static apply(decision: Decision): boolean {
    return Boolean(decision.throttles?.length || decision.constraints.maxCallsPerSession?.length);
  }

  /** The refusal (GH_ERR_THROTTLED, GH_ERR_SESSION_QUOTA, or the store's failure), or undefined when admitted. */
  /** `about`: the call's log fields (job, session, trace), built only if a line is written. */
  async count(mode: 'take' | 'peek', decision: Decision, caller: QuotaCaller, tool: string, about?: () => CallLogFields): Promise<GatewayError | undefined> {
    const { tenant, principal, sessionId } = caller;
    try {
      if (decision.throttles?.length) await this.limiter[mode](decision.throttles, { tenant, principal, tool });
      const quotas = decision.constraints.maxCallsPerSession;
      if (quotas?.length) await this.quotas[mode](quotas, { tenant, principal, ...(sessionId ? { sessionId } : {}) });
      return undefined;
    } catch (err) {
      const error = asGatewayError(err);
      if (isRefusal(error)) return error;
      this.log.error('could not count the call against its limits; denying (fail closed)', { ...about?.(), code: error.code, error: error.message });
      return asGatewayError(new Error(`The call's rate limits could not be checked, so it did not run: ${error.message}`), error.code);
    }
  }
}
