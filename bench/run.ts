import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runCli, UsageError } from '../tools/cli.js';
import { refreshDocs } from './support/doc-figures.js';
import { isEntry, parseUrlsOption, printFigures } from './support/cli.js';
import type { BenchFigure, BenchOptions, BenchReport, BenchSection } from './support/types.js';

/**
 * `npm run bench [-- --quick] [-- --only speed,batch] [-- --urls N] [-- --merge]`: runs every section in one process,
 * prints one table and writes it as JSON and Markdown under bench/results/. With `--merge` (and `--only`), the
 * sections run replace their own figures in the results file already there, the others' stay as they were.
 */

const SECTIONS: ReadonlyArray<readonly [string, () => Promise<BenchSection>]> = [
  ['speed', async () => (await import('./speed.js')).speedBench],
  ['batch', async () => (await import('./batch.js')).batchBench],
  ['api', async () => (await import('./api.js')).apiBench],
  ['cardinality', async () => (await import('./cardinality.js')).cardinalityBench],
  ['filter-scale', async () => (await import('./filter-scale.js')).filterScaleBench],
  ['sites', async () => (await import('./sites.js')).sitesBench],
  ['freshness', async () => (await import('./freshness.js')).freshnessBench],
  ['collect', async () => (await import('./collect.js')).collectBench],
  ['sketch', async () => (await import('./sketch.js')).sketchBench],
  ['flood', async () => (await import('./flood.js')).floodBench],
];

const format = (n: number | undefined | null): string => {
  // A JSON round trip turns NaN into null.
  if (n === undefined || n === null || Number.isNaN(n)) return '';
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  const abs = Math.abs(n);
  return n.toLocaleString('en-US', { maximumSignificantDigits: abs >= 100 ? 6 : 3 });
};

export function toMarkdown(report: BenchReport): string {
  const rows = report.figures.map(
    (f) =>
      `| ${f.section} | ${f.metric} | ${format(f.value)} ${f.unit} | ${f.baseline === undefined ? '' : `${format(f.baseline)} ${f.unit}`} | ${f.ratio === undefined ? '' : `${format(f.ratio)}×`} | ${f.note ?? ''} |`,
  );
  return [
    `Bench ${report.quick ? '(quick) ' : ''}run at ${report.startedAt} on ${report.machine.cpus}× ${report.machine.cpuModel}, Node ${report.machine.node}, ${format(report.durationSeconds)} s` +
      (report.sectionSeconds
        ? ` (${Object.entries(report.sectionSeconds)
            .map(([name, seconds]) => `${name} ${format(Math.round(seconds))} s`)
            .join(', ')}).`
        : '.'),
    '',
    '| section | metric | value | naive baseline | ratio | note |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    ...report.failures.map((f) => `| ${f.section} | FAILED | | | | ${f.error.replace(/\|/g, '\\|')} |`),
    '',
  ].join('\n');
}

export async function runBench(options: BenchOptions, only?: readonly string[]): Promise<BenchReport> {
  const { cpus, platform } = await import('node:os');
  const started = Date.now();
  const figures: BenchFigure[] = [];
  const failures: { section: string; error: string }[] = [];
  const sectionSeconds: Record<string, number> = {};
  for (const [name, load] of SECTIONS) {
    if (only && !only.includes(name)) continue;
    options.log(`== ${name}`);
    const sectionStarted = Date.now();
    try {
      const section = await load();
      figures.push(...(await section(options)));
    } catch (error) {
      failures.push({ section: name, error: error instanceof Error ? error.message : String(error) });
      options.log(
        `   ${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
    }
    sectionSeconds[name] = (Date.now() - sectionStarted) / 1000;
    options.log(`   ${name}: ${sectionSeconds[name].toFixed(1)} s`);
  }
  return {
    startedAt: new Date(started).toISOString(),
    quick: options.quick,
    machine: {
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      platform: platform(),
    },
    durationSeconds: (Date.now() - started) / 1000,
    sectionSeconds,
    figures,
    failures,
  };
}

/** An earlier results file with the sections just run replaced by their new figures, in the sections' order. */
function merged(path: string, ran: BenchReport, sections: readonly string[]): BenchReport {
  const earlier = JSON.parse(readFileSync(path, 'utf8')) as BenchReport;
  const order = (section: string) => SECTIONS.findIndex(([name]) => name === section);
  const kept = earlier.figures.filter((f) => !sections.includes(f.section));
  return {
    ...earlier,
    figures: [...kept, ...ran.figures].sort((a, b) => order(a.section) - order(b.section)),
    failures: [...earlier.failures.filter((f) => !sections.includes(f.section)), ...ran.failures],
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string', default: 'bench/results' },
      // One cardinality of the cardinality axis only (e.g. --urls 1000000).
      urls: { type: 'string' },
      merge: { type: 'boolean', default: false },
    },
  });
  const only = values.only?.split(',').map((s) => s.trim());
  const unknown = only?.filter((name) => !SECTIONS.some(([section]) => section === name)) ?? [];
  if (unknown.length > 0)
    throw new UsageError(
      `unknown section(s) ${unknown.join(', ')}; known: ${SECTIONS.map(([s]) => s).join(', ')}`,
    );
  const ran = await runBench(
    {
      quick: values.quick,
      urls: parseUrlsOption(values.urls),
      log: (line) => process.stderr.write(line + '\n'),
    },
    only,
  );
  printFigures(ran.figures);
  mkdirSync(values.out, { recursive: true });
  const base = ran.quick ? 'latest-quick' : 'latest';
  const report = values.merge ? merged(join(values.out, `${base}.json`), ran, only ?? []) : ran;
  writeFileSync(join(values.out, `${base}.json`), JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(values.out, `${base}.md`), toMarkdown(report));
  process.stderr.write(`wrote ${join(values.out, `${base}.json`)} and ${base}.md\n`);
  // The docs' figures are generated from the committed results (bench/support/doc-figures.ts): a run into
  // bench/results/ rewrites them, a run elsewhere (the tests' temporary folder) leaves the work tree alone.
  if (!relative(resolve('bench/results'), resolve(values.out)).startsWith('..')) {
    try {
      const changed = refreshDocs();
      if (changed.length > 0) process.stderr.write(`figures rewritten in ${changed.join(', ')}\n`);
    } catch (error) {
      // A partial run (--only) can leave a results file without a figure the docs show: say so, keep the results.
      process.stderr.write(
        `figures in the docs not rewritten: ${error instanceof Error ? error.message : String(error)}\n`,
      );
    }
  }
  if (report.failures.length > 0) process.exit(1);
}

if (isEntry(import.meta.url)) runCli(main);
