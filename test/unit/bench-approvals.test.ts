import { describe, expect, it } from 'vitest';
import { pausedWithin } from '../../bench/approvals.ts';

// The approvals bench reports how long its own process's GC paused each timed trip: only the part inside the trip counts.
describe('the approvals bench: its own GC pauses within a trip', () => {
  const pause = (startTime: number, duration: number) => ({ startTime, duration });

  it('counts the overlap of each pause with the trip, nothing outside it', () => {
    expect(pausedWithin([], 10, 20)).toBe(0);
    expect(pausedWithin([pause(0, 5), pause(25, 5)], 10, 20)).toBe(0);
    expect(pausedWithin([pause(12, 3)], 10, 20)).toBe(3);
    expect(pausedWithin([pause(8, 4)], 10, 20)).toBe(2);
    expect(pausedWithin([pause(18, 10)], 10, 20)).toBe(2);
    expect(pausedWithin([pause(5, 30)], 10, 20)).toBe(10);
    expect(pausedWithin([pause(11, 1), pause(15, 2)], 10, 20)).toBe(3);
  });
});
