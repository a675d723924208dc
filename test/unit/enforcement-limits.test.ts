import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../adapters/memory/store.ts';
import { RateLimiter } from '../../src/enforcement/throttle.ts';
import { SessionQuotas } from '../../src/enforcement/session-quota.ts';
import { GatewayError } from '../../src/errors.ts';
import type { Clock } from '../../src/ports.ts';
import type { ThrottleSpec } from '../../src/kernel/decision.ts';

function fakeClock(start = 1_800_000_000_000): Clock & { advance(ms: number): void } {
  let now = start;
  return { now: () => now, sleep: async () => undefined, advance: (ms) => void (now += ms) };
}

async function outcome(p: Promise<void>): Promise<string | { code: string; data: Record<string, unknown> | undefined }> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    return { code: err.code, data: err.data };
  }
}

const minute: ThrottleSpec = { ruleId: 'rl', limit: 2, windowMs: 60_000, per: 'principal' };
const ann = { tenant: 't', principal: 'ann', tool: 'up__echo' };

describe('rate limiter', () => {
  it('admits the limit per window, then refuses with an exact retry-after until the window ends', async () => {
    const clock = fakeClock(1_800_000_000_000); // a multiple of 60 s: windows start here
    const limiter = new RateLimiter(new MemoryStore(clock), clock);
    expect(await outcome(limiter.take([minute], ann))).toBe('ok');
    clock.advance(10_000);
    expect(await outcome(limiter.take([minute], ann))).toBe('ok');
    clock.advance(5_000);
    expect(await outcome(limiter.take([minute], ann))).toEqual({ code: 'GH_ERR_THROTTLED', data: { ruleId: 'rl', retryAfterMs: 45_000 } });
    clock.advance(44_999);
    expect(await outcome(limiter.take([minute], ann))).toMatchObject({ code: 'GH_ERR_THROTTLED', data: { retryAfterMs: 1 } });
    clock.advance(1);
    expect(await outcome(limiter.take([minute], ann))).toBe('ok');
  });

  it('keys by principal, tenant or tool as the rule says', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter(new MemoryStore(clock), clock);
    const one = (per: ThrottleSpec['per']): ThrottleSpec => ({ ruleId: `one-${per}`, limit: 1, windowMs: 60_000, per });
    const bob = { ...ann, principal: 'bob' };
    expect(await outcome(limiter.take([one('principal')], ann))).toBe('ok');
    expect(await outcome(limiter.take([one('principal')], bob))).toBe('ok');
    expect(await outcome(limiter.take([one('principal')], ann))).toMatchObject({ code: 'GH_ERR_THROTTLED' });
    expect(await outcome(limiter.take([one('tenant')], ann))).toBe('ok');
    expect(await outcome(limiter.take([one('tenant')], bob))).toMatchObject({ code: 'GH_ERR_THROTTLED' });
    expect(await outcome(limiter.take([one('tenant')], { ...bob, tenant: 'other' }))).toBe('ok');
    expect(await outcome(limiter.take([one('tool')], ann))).toBe('ok');
    expect(await outcome(limiter.take([one('tool')], { ...bob, tool: 'up__other' }))).toBe('ok');
    expect(await outcome(limiter.take([one('tool')], bob))).toMatchObject({ code: 'GH_ERR_THROTTLED' });
  });

  it('applies every spec and reports the longest wait', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter(new MemoryStore(clock), clock);
    const specs: ThrottleSpec[] = [
      { ruleId: 'burst', limit: 1, windowMs: 1_000, per: 'principal' },
      { ruleId: 'hourly', limit: 1, windowMs: 3_600_000, per: 'principal' },
    ];
    expect(await outcome(limiter.take(specs, ann))).toBe('ok');
    clock.advance(2_000);
    expect(await outcome(limiter.take(specs, ann))).toMatchObject({ code: 'GH_ERR_THROTTLED', data: { ruleId: 'hourly' } });
  });

  it('cannot be raced past its limit', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter(new MemoryStore(clock), clock);
    const spec: ThrottleSpec = { ruleId: 'r', limit: 5, windowMs: 60_000, per: 'tenant' };
    const results = await Promise.all(Array.from({ length: 20 }, () => outcome(limiter.take([spec], ann))));
    expect(results.filter((r) => r === 'ok')).toHaveLength(5);
  });
});

describe('session quotas', () => {
  it('counts per session, and per principal for a caller without one', async () => {
    const quotas = new SessionQuotas(new MemoryStore(fakeClock()));
    const q = [{ ruleId: 'ws', limit: 2 }];
    for (let i = 0; i < 2; i++) expect(await outcome(quotas.take(q, { tenant: 't', principal: 'ann', sessionId: 's1' }))).toBe('ok');
    expect(await outcome(quotas.take(q, { tenant: 't', principal: 'ann', sessionId: 's1' }))).toEqual({ code: 'GH_ERR_SESSION_QUOTA', data: { ruleId: 'ws' } });
    expect(await outcome(quotas.take(q, { tenant: 't', principal: 'ann', sessionId: 's2' }))).toBe('ok');
    for (let i = 0; i < 2; i++) expect(await outcome(quotas.take(q, { tenant: 't', principal: 'ann' }))).toBe('ok');
    expect(await outcome(quotas.take(q, { tenant: 't', principal: 'ann' }))).toMatchObject({ code: 'GH_ERR_SESSION_QUOTA' });
    expect(await outcome(quotas.take(q, { tenant: 't', principal: 'bob' }))).toBe('ok');
    // Another rule's quota is counted on its own.
    expect(await outcome(quotas.take([{ ruleId: 'other', limit: 1 }], { tenant: 't', principal: 'ann', sessionId: 's1' }))).toBe('ok');
  });
});

describe('peeking at the limits', () => {
  it('says what take would say, and counts nothing', async () => {
    const clock = fakeClock(1_800_000_000_000);
    const store = new MemoryStore(clock);
    const limiter = new RateLimiter(store, clock);
    const quotas = new SessionQuotas(store);
    const quota = [{ ruleId: 'q', limit: 1 }];
    const caller = { tenant: 't', principal: 'ann', sessionId: 's1' };
    // However often a held call peeks, the limits stay whole.
    for (let i = 0; i < 5; i++) {
      expect(await outcome(limiter.peek([minute], ann))).toBe('ok');
      expect(await outcome(quotas.peek(quota, caller))).toBe('ok');
    }
    expect(await outcome(limiter.take([minute], ann))).toBe('ok');
    expect(await outcome(limiter.take([minute], ann))).toBe('ok');
    expect(await outcome(quotas.take(quota, caller))).toBe('ok');
    // Used up: a peek refuses exactly as the next take would, with the same retry-after.
    clock.advance(15_000);
    expect(await outcome(limiter.peek([minute], ann))).toEqual({ code: 'GH_ERR_THROTTLED', data: { ruleId: 'rl', retryAfterMs: 45_000 } });
    expect(await outcome(quotas.peek(quota, caller))).toEqual({ code: 'GH_ERR_SESSION_QUOTA', data: { ruleId: 'q' } });
    expect(await outcome(quotas.peek(quota, { ...caller, sessionId: 's2' }))).toBe('ok');
    expect(await outcome(limiter.take([minute], ann))).toEqual({ code: 'GH_ERR_THROTTLED', data: { ruleId: 'rl', retryAfterMs: 45_000 } });
  });
});
