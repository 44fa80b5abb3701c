import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/gpu/**', 'node_modules/**'],
    // One process per file, one file at a time: native memory statistics and timing-sensitive
    // event-loop checks must not share a process or compete for the two CI cores.
    pool: 'forks',
    execArgv: ['--expose-gc'],
    fileParallelism: false,
    // The in-process suites test the CPU backend on any machine; GPU paths live in test/gpu/.
    env: { ND_BACKEND: 'cpu' },
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
