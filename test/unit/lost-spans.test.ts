import { afterEach, describe, expect, it, vi } from 'vitest';
import { lostSpanReport } from '../../adapters/otel/otlp-tracing.ts';
import { recordingLogger } from '../helpers/capturing-log.ts';

// The README's promise: lost spans are logged at most once a minute, with how many since the last line.
describe('lost spans report', () => {
  afterEach(() => vi.useRealTimers());

  it('logs the first loss, then at most once a minute with the count since, and always when forced at the stop', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const log = recordingLogger();
    const lost = lostSpanReport(log, 'http://collector:4318/v1/traces');
    const lines = () => log.lines.filter((l) => l.msg.startsWith('tracing: spans lost'));

    lost(5, new Error('ECONNREFUSED'));
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(5_000);
      lost(2, new Error('ECONNREFUSED'));
    }
    expect(lines()).toHaveLength(1);
    expect(lines()[0].fields).toMatchObject({ lost: 5, endpoint: 'http://collector:4318/v1/traces' });

    vi.advanceTimersByTime(10_000);
    lost(1, new Error('ECONNREFUSED'));
    expect(lines()).toHaveLength(2);
    expect(lines()[1].fields).toMatchObject({ lost: 21 });

    lost(3, undefined, true);
    expect(lines()).toHaveLength(3);
    expect(lines()[2].fields).toMatchObject({ lost: 3 });
  });
});
