import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Profiling tests run real Python processes for seconds each and share the CPUs
    // with the sampler; running files one at a time keeps their shares honest.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default'],
  },
});
