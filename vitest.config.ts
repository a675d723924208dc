import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Bounds on failure, not timings: tests start real processes (the CLI, gateways, workers, each loading tsx),
    // and on a loaded 2-core machine one CLI run takes ten seconds. What a test waits for, it waits for as an event.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
