import { defineConfig } from 'vitest/config';
import { LEDGER_DIR } from './test/support/aws-fidelity/ledger.js';

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
          setupFiles: ['test/integration/support/ledger-marker.ts'],
          testTimeout: 300_000,
          // `npm run test:endpoint` sets a longer one: moto writes far slower than DynamoDB Local, and a backfill
          // that a setup hook does in seconds here takes minutes there (docs/single-endpoint.md).
          hookTimeout: Number(process.env.PAGEVIEWS_HOOK_TIMEOUT_MS ?? 120_000),
          // The emulators are shared: files run one at a time, each on its own resource names.
          fileParallelism: false,
          // An explicit group, so that the ledger project's group comes after it: vitest runs the files of a
          // project without file parallelism and without a group last, after every numbered group.
          sequence: { groupOrder: 1 },
          // Every AWS call the functions' code makes is recorded here (shared/call-ledger.ts).
          env: { PAGEVIEWS_CALL_LEDGER: LEDGER_DIR },
        },
      },
      {
        test: {
          // Checks the call ledger the integration project wrote against the synthesized template, so it runs
          // after that project: a later group, whatever else runs in parallel.
          name: 'ledger',
          include: ['test/ledger/**/*.test.ts'],
          sequence: { groupOrder: 2 },
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
