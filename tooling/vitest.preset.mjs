// Shared vitest settings for every @diffmix package.
// Tests live beside the code (src/**/*.test.ts). Benchmarks are never run as tests.
import { defineConfig } from 'vitest/config';

export function diffmixVitest(overrides = {}) {
  return defineConfig({
    test: {
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      exclude: ['**/node_modules/**', '**/dist/**', 'bench/**'],
      environment: 'node',
      // CI has 2 cores; image decoding tests are IO-heavy, keep parallelism modest.
      pool: 'forks',
      maxWorkers: 2,
      testTimeout: 60_000,
      hookTimeout: 60_000,
      ...overrides.test,
    },
  });
}

export default diffmixVitest();
