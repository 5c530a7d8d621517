import { configDefaults, defineConfig } from 'vitest/config';

/**
 * The import-throttling test measures how busy the account's 20 import slots stay in real time,
 * which depends on the in-process Step Functions interpreter getting a core. With 8 s imports on a
 * 2-core machine its mean was 16.8 beside another end-to-end file and 18.7–19.1 alone (the test
 * asks for 18). It runs alone, after everything else.
 */
const IMPORT_THROTTLE = 'test/e2e/register.test.ts';

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // End-to-end files start whole local stacks with agent processes; two cores run two at most.
    maxWorkers: 2,
    env: {
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      POWERTOOLS_METRICS_DISABLED: 'true',
    },
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, IMPORT_THROTTLE],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'import-throttle', include: [IMPORT_THROTTLE], sequence: { groupOrder: 1 } },
      },
    ],
  },
});
