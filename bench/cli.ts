import { pathToFileURL } from 'node:url';
import { runCli } from '../scripts/cli.js';
import type { BenchFigure, BenchSection } from './types.js';

/** Prints figures as an aligned table. */
export function printFigures(
  figures: readonly BenchFigure[],
  write = (s: string) => process.stdout.write(s),
): void {
  const format = (n: number | undefined) =>
    n === undefined
      ? ''
      : Number.isInteger(n)
        ? n.toLocaleString('en-US')
        : n.toLocaleString('en-US', { maximumSignificantDigits: 3 });
  const rows = figures.map((f) => [
    f.section,
    f.metric,
    `${format(f.value)} ${f.unit}`,
    f.baseline === undefined ? '' : `${format(f.baseline)} ${f.unit}`,
    f.ratio === undefined ? '' : `${format(f.ratio)}x`,
  ]);
  const header = ['section', 'metric', 'value', 'naive baseline', 'ratio'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (row: string[]) =>
    row
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  write([line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n');
}

/** Lets a bench section run on its own: `npx tsx bench/speed.ts [--quick]`. */
export function benchMain(moduleUrl: string, section: BenchSection): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  const quick = process.argv.includes('--quick');
  runCli(async () =>
    printFigures(await section({ quick, log: (line) => process.stderr.write(line + '\n') })),
  );
}
