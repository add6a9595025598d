import { existsSync, readFileSync } from 'node:fs';

/**
 * The counts of vitest JSON reports, by the one rule CI and `npm run test:endpoint` share. vitest prints no
 * `N passed, N failed` line, and a file whose setup failed reports its tests as skipped, not failed: such a file
 * counts as one failure, so a run whose setup broke cannot read as green.
 * `scripts/test-counts.ts` is the command CI calls.
 */

export interface TestCounts {
  readonly passed: number;
  readonly failed: number;
}

interface VitestReport {
  readonly numPassedTests: number;
  readonly numFailedTests: number;
  readonly testResults: readonly {
    readonly status: string;
    readonly assertionResults: readonly { readonly status: string }[];
  }[];
}

/** A vitest JSON report's counts, or undefined when the run ended before writing one. */
export function readCounts(report: string): TestCounts | undefined {
  if (!existsSync(report)) return undefined;
  const r = JSON.parse(readFileSync(report, 'utf8')) as VitestReport;
  const failedSetups = r.testResults.filter(
    (file) => file.status === 'failed' && !file.assertionResults.some((test) => test.status === 'failed'),
  ).length;
  return { passed: r.numPassedTests, failed: r.numFailedTests + failedSetups };
}
