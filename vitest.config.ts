import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    pool: 'forks',
    // training steps recycle their intermediates (src/engine/scratch.ts): in tests, released
    // buffers are filled with NaN, so a tensor that escaped its step shows up as NaN
    env: { LIE_BRACKET_POISON_SCRATCH: '1' },
  },
});
