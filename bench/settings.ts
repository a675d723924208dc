import type { Era } from './http-client.ts';

const positive = (name: string, fallback: number): number => check(name, Number(process.env[name] ?? fallback));

function check(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
}

/** Iteration counts, from the environment; the defaults keep the whole run near 2.5 minutes on 2 cores. */
export function readSettings() {
  const calls = positive('BENCH_CALLS', 1500);
  const eras = (process.env.BENCH_ERAS ?? 'legacy,modern').split(',').map((e) => e.trim());
  for (const era of eras) if (era !== 'legacy' && era !== 'modern') throw new Error(`BENCH_ERAS: unknown era ${era}`);
  return {
    /** Calls per measured HTTP batch. */
    calls,
    /** Sequential calls per measured stdio batch. */
    stdioCalls: positive('BENCH_STDIO_CALLS', 1500),
    rounds: positive('BENCH_ROUNDS', 7),
    /**
     * Calls per target before the first round (HTTP targets at the highest concurrency). V8 takes 10,000-20,000
     * calls to finish optimizing Gatehouse's path: after 1,000, `gatehouse wrap` still spent 2-3 times its settled
     * CPU per call, largely on compiling (README, Performance).
     */
    warmup: positive('BENCH_WARMUP', 20_000),
    /** Calls before each measured batch, re-warming a target after the others had the CPU. */
    rewarm: Math.max(50, Math.round(calls / 20)),
    concurrency: (process.env.BENCH_CONCURRENCY ?? '1,16').split(',').map((c) => check('BENCH_CONCURRENCY', Number(c))),
    eras: eras as Era[],
  };
}

export type Settings = ReturnType<typeof readSettings>;
