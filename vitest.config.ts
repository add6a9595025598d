import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // `npm run test:endpoint` sets its own report file, so that it never replaces the one of `npm test`
    // (which .ci/run reads); vitest's --outputFile does not override a file named here.
    reporters: [
      'default',
      ['json', { outputFile: process.env.PAGEVIEWS_TEST_REPORT || '.vitest-report.json' }],
    ],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'infra',
          include: ['test/infra/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          // The emulators are shared: files run one at a time, each on its own resource names.
          fileParallelism: false,
        },
      },
    ],
  },
});
