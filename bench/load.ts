import { percentile } from './stats.ts';

export interface LoadFigures {
  p50Ms: number;
  p99Ms: number;
  callsPerSec: number;
}

/**
 * A closed loop: `concurrency` workers each send a call as soon as their previous one is answered, until
 * `calls` have been made. Latency is per call; calls/s is over the wall time of the whole batch.
 */
export async function closedLoop(call: () => Promise<void>, calls: number, concurrency: number): Promise<LoadFigures> {
  const latencies = new Float64Array(calls);
  let issued = 0;
  const worker = async () => {
    while (issued < calls) {
      const slot = issued++;
      const started = performance.now();
      await call();
      latencies[slot] = performance.now() - started;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, calls) }, worker));
  const wallMs = performance.now() - started;
  latencies.sort();
  return { p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), callsPerSec: (calls / wallMs) * 1000 };
}
