import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Each test file gets its own PGlite instance and its own PostgreSQL database; two cores limit useful parallelism.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
