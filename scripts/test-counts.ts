import { existsSync, readFileSync } from 'node:fs';
import { isEntry } from '../bench/support/cli.js';

/**
 * The counts of vitest JSON reports, by the one rule CI and `npm run test:endpoint` share. vitest prints no
 * `N passed, N failed` line, and a file whose setup failed reports its tests as skipped, not failed: such a file
 * counts as one failure, so a run whose setup broke cannot read as green.
 *
 * `tsx scripts/test-counts.ts REPORT…` prints the summed closing line and exits 1 when a report is missing, one of
 * them passed no test, or anything failed.
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

if (isEntry(import.meta.url)) {
  let passed = 0;
  let failed = 0;
  let ok = true;
  for (const report of process.argv.slice(2)) {
    const counts = readCounts(report);
    if (!counts || counts.passed === 0) ok = false;
    passed += counts?.passed ?? 0;
    failed += counts?.failed ?? 0;
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  if (!ok || failed > 0) process.exitCode = 1;
}
