import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/ports.ts';

/** What every Clock must do. */
export function runClockContract(name: string, clock: Clock): void {
  describe(`Clock contract: ${name}`, () => {
    it('tells the time in milliseconds since the epoch, never going back', () => {
      const a = clock.now();
      const b = clock.now();
      expect(b).toBeGreaterThanOrEqual(a);
      expect(a).toBeGreaterThan(Date.UTC(2020, 0, 1));
    });

    it('sleeps, and rejects a sleep whose signal aborts', async () => {
      const before = clock.now();
      await clock.sleep(20);
      expect(clock.now() - before).toBeGreaterThanOrEqual(15);
      const controller = new AbortController();
      const sleeping = clock.sleep(10_000, controller.signal);
      controller.abort(new Error('woken'));
      await expect(sleeping).rejects.toThrow();
    });
  });
}
