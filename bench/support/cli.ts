import { pathToFileURL } from 'node:url';
import { parseNumber, runCli } from '../../tools/cli.js';
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

/** Whether the module at `moduleUrl` is the program node was started with. */
export const isEntry = (moduleUrl: string): boolean =>
  process.argv[1] !== undefined && moduleUrl === pathToFileURL(process.argv[1]).href;

/** Parses `--urls N` (the cardinality axis's one case), undefined when absent. */
export const parseUrlsOption = (value: string | undefined): number | undefined =>
  parseNumber(value, '--urls', { min: 1, max: 1e9 });

/** Lets a bench section run on its own: `npx tsx bench/speed.ts [--quick] [--urls N]`. */
export function benchMain(moduleUrl: string, section: BenchSection): void {
  if (!isEntry(moduleUrl)) return;
  const quick = process.argv.includes('--quick');
  const at = process.argv.indexOf('--urls');
  runCli(async () => {
    const urls = parseUrlsOption(at > 0 ? process.argv[at + 1] : undefined);
    printFigures(await section({ quick, urls, log: (line) => process.stderr.write(line + '\n') }));
  });
}
