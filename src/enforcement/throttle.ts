import type { Clock, Store } from '../ports.ts';
import type { ThrottleSpec } from '../kernel/decision.ts';
import { refusal } from './refusal.ts';

export interface ThrottleSubject {
  tenant: string;
  principal: string;
  /** The namespaced tool. */
  tool: string;
}

/**
 * The rate limits of `throttle` rules, counted in the Store so that every gateway replica sharing it shares the
 * count. Fixed windows aligned to multiples of `windowMs` since the epoch: one atomic increment per rule and
 * call, an exact retry-after, and at worst 2 × limit calls across a window boundary (a sliding window would
 * smooth that at the price of a second read per call). Every call that reaches the limiter counts, including
 * one it refuses: a client that keeps calling while throttled gains nothing, and pays nothing extra either,
 * since the window's end does not move.
 */
export class RateLimiter {
  constructor(
    private readonly store: Store,
    private readonly clock: Pick<Clock, 'now'>,
  ) {}

  /** Counts the call against every spec; throws GH_ERR_THROTTLED (with `retryAfterMs`) if any is over. */
  async take(specs: readonly ThrottleSpec[], subject: ThrottleSubject): Promise<void> {
    const now = this.clock.now();
    const starts = specs.map((spec) => now - (now % spec.windowMs));
    const counts = await Promise.all(specs.map((spec, i) => this.store.increment(this.key(spec, subject, starts[i]), { ttlMs: spec.windowMs })));
    refuseOver(specs, counts, starts, now);
  }

  /**
   * Throws what `take` would throw for this call now, counting nothing: a call held for a human is refused at once
   * when its limits are already used up, and uses none of them while it waits.
   */
  async peek(specs: readonly ThrottleSpec[], subject: ThrottleSubject): Promise<void> {
    const now = this.clock.now();
    const starts = specs.map((spec) => now - (now % spec.windowMs));
    const counts = await Promise.all(specs.map(async (spec, i) => ((await this.store.get<number>(this.key(spec, subject, starts[i]))) ?? 0) + 1));
    refuseOver(specs, counts, starts, now);
  }

  private key(spec: ThrottleSpec, subject: ThrottleSubject, start: number): string {
    return counterKey('throttle', spec.ruleId, spec.per, ...who(spec, subject), String(start));
  }
}

/** Throws GH_ERR_THROTTLED for the spec whose window ends last among those the counts put over their limit. */
function refuseOver(specs: readonly ThrottleSpec[], counts: readonly number[], starts: readonly number[], now: number): void {
  let over: { spec: ThrottleSpec; retryAfterMs: number } | undefined;
  for (let i = 0; i < specs.length; i++) {
    const retryAfterMs = starts[i] + specs[i].windowMs - now;
    if (counts[i] > specs[i].limit && (!over || retryAfterMs > over.retryAfterMs)) over = { spec: specs[i], retryAfterMs };
  }
  if (!over) return;
  const { spec, retryAfterMs } = over;
  throw refusal(
    'GH_ERR_THROTTLED',
    `Rate limited by rule ${spec.ruleId}: at most ${spec.limit} calls per ${duration(spec.windowMs)} ${PER[spec.per]}. Retry after ${Math.ceil(retryAfterMs / 1000)} s (retryAfterMs: ${retryAfterMs}).`,
    { ruleId: spec.ruleId, retryAfterMs },
  );
}

const PER: Record<ThrottleSpec['per'], string> = { principal: 'for each caller', tenant: 'for the whole tenant', tool: 'for this tool' };

function who(spec: ThrottleSpec, s: ThrottleSubject): string[] {
  switch (spec.per) {
    case 'tenant':
      return [s.tenant];
    case 'tool':
      return [s.tenant, s.tool];
    default:
      return [s.tenant, s.principal];
  }
}

/** A Store key from parts that may contain anything: each part is encoded, so no two tuples share a key. */
export function counterKey(kind: string, ...parts: string[]): string {
  return `${kind}:${parts.map(encodeURIComponent).join(':')}`;
}

/** A window as a person says it: `1 h`, `10 min`, `30 s`, `250 ms`. */
export function duration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}
