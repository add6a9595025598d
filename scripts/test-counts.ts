import { readCounts } from '../tools/test-counts.js';

/**
 * `tsx scripts/test-counts.ts REPORT…`: prints the closing line `N passed, N failed` summed over vitest JSON reports
 * (by the rule of tools/test-counts.ts) and exits 1 when a report is missing, one of them passed no test, or anything
 * failed. `.ci/run` ends with it.
 */

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
