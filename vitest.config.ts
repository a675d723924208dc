import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Bounds on failure, not timings: tests start real processes (the CLI, gateways, workers, each loading tsx),
    // and on a loaded 2-core machine one CLI run takes ten seconds. What a test waits for, it waits for as an event.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Most of a test's time is spent waiting on the processes it started (gateways, servers, CLIs), not on the
    // CPU: three files at once on a 2-core machine took the suite from about 10.5 to under 9 minutes under load
    // (vitest's default there is one).
    maxWorkers: 3,
  },
});
