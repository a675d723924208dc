/** Nearest-rank percentile of an ascending-sorted sample. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** The median of a few round results: robust to one noisy round on a shared machine. */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The median wall time (ms) of `rounds` runs of `run`, one after another. */
export async function timed(rounds: number, run: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    await run();
    times.push(performance.now() - t);
  }
  return median(times);
}
