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

/**
 * An open loop at a fixed rate: a call starts every 1/`perSecond` s (those due are sent together each tick),
 * however long earlier ones take, with at most `maxInFlight` outstanding (beyond that the loop waits: the
 * figures then say the rate was not reached).
 */
export async function pacedLoop(call: () => Promise<void>, calls: number, perSecond: number, maxInFlight = 256): Promise<LoadFigures> {
  const latencies = new Float64Array(calls);
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  for (let i = 0; i < calls; i++) {
    const due = started + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    if (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    const sent = performance.now();
    const p: Promise<void> = call().then(() => {
      latencies[i] = performance.now() - sent;
      inFlight.delete(p);
    });
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  const wallMs = performance.now() - started;
  latencies.sort();
  return { p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), callsPerSec: (calls / wallMs) * 1000 };
}
