import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CollectionEstimate, CostEstimate, CostInputs } from './cost-model.js';
import type { BenchFigure } from './types.js';

/**
 * Figures in the Markdown files are generated, never copied by hand. A figure or a table sits between two
 * markers,
 *
 *     <!-- bench:ID -->…<!-- /bench -->
 *
 * and what is between them is what `FIGURES[ID]` renders from the results files under `bench/results/`:
 * the JSON that `npm run bench` writes (`latest-quick.json`, `cardinality/urls-*.json`, …) and the cost cases
 * that `npm run cost -- --out` writes (`cost/*.json`, run by `npm run figures`). `npm run bench` and
 * `npm run figures` rewrite every marked figure after they write; test/unit/doc-figures.test.ts fails when a
 * marked figure differs from what its results file gives now, or when a hand-written figure appears where the
 * docs report measurements.
 */

/** A bench run as `npm run bench` writes it (the part the docs read). */
export interface BenchResults {
  readonly startedAt: string;
  readonly quick: boolean;
  readonly machine: { readonly cpus: number; readonly cpuModel: string };
  readonly durationSeconds: number;
  readonly figures: readonly BenchFigure[];
}

/** One cost case as `npm run cost -- --out PATH` writes it to PATH.json. */
export interface CostReport {
  /** The command that produced it, without `--out`. */
  readonly command: string;
  readonly generatedAt: string;
  /** The bench results file the per-query and CPU figures came from. */
  readonly bench?: string;
  readonly inputs: CostInputs;
  readonly ours: CostEstimate;
  readonly naive: CostEstimate;
  readonly viewStorePerRun: { readonly puts: number; readonly gets: number };
  readonly collection: CollectionEstimate;
  readonly previousCollection: CostEstimate;
  readonly collectionByTrackerLoads: ReadonlyArray<{
    readonly loads: number;
    readonly perMillionEvents: number;
  }>;
  readonly trackerLoadsWithin2: number;
}

/** The cost cases the docs show, each a file under bench/results/cost/ (`npm run figures` runs them). */
export const COST_CASES: ReadonlyArray<{ readonly name: string; readonly args: readonly string[] }> = [
  { name: '1000eps-10k-urls', args: ['--events-per-second', '1000', '--urls-per-day', '10000'] },
  { name: '1000eps-1m-urls', args: ['--events-per-second', '1000', '--urls-per-day', '1000000'] },
  {
    name: '1000eps-10k-urls-window-5s',
    args: ['--events-per-second', '1000', '--urls-per-day', '10000', '--batching-window', '5'],
  },
  // How cost scales with sites (docs/sites.md): the same traffic and urls spread over 4 and 16 sites.
  {
    name: '1000eps-10k-urls-4-sites',
    args: ['--events-per-second', '1000', '--urls-per-day', '10000', '--sites', '4'],
  },
  {
    name: '1000eps-10k-urls-16-sites',
    args: ['--events-per-second', '1000', '--urls-per-day', '10000', '--sites', '16'],
  },
  {
    name: '1000eps-10k-urls-16-sites-window-5s',
    args: [
      '--events-per-second',
      '1000',
      '--urls-per-day',
      '10000',
      '--sites',
      '16',
      '--batching-window',
      '5',
    ],
  },
];

/** Reads results files by their path under bench/results/. */
export interface Results {
  bench(path: string): BenchResults;
  cost(name: string): CostReport;
}

export class MissingResultError extends Error {
  override readonly name = 'MissingResultError';
}

export function resultsIn(dir: string): Results {
  const cache = new Map<string, unknown>();
  const read = <T>(path: string): T => {
    if (!cache.has(path)) {
      const file = join(dir, path);
      if (!existsSync(file))
        throw new MissingResultError(`${file} does not exist (npm run bench / npm run figures)`);
      cache.set(path, JSON.parse(readFileSync(file, 'utf8')));
    }
    return cache.get(path) as T;
  };
  return {
    bench: (path) => read<BenchResults>(path),
    cost: (name) => read<CostReport>(`cost/${name}.json`),
  };
}

// ---- formatting (a figure is rounded, never altered)

const sig = (n: number, digits = 3): string =>
  Number.isInteger(n) && Math.abs(n) >= 10 ** (digits - 1)
    ? n.toLocaleString('en-US')
    : n.toLocaleString('en-US', { maximumSignificantDigits: digits });
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
/** `a–b` of the rounded figures, or one figure when they round alike. */
const range = (values: readonly number[], digits = 2): string => {
  const [low, high] = [sig(Math.min(...values), digits), sig(Math.max(...values), digits)];
  return low === high ? low : `${low}–${high}`;
};
const usd0 = (n: number): string => `$${int(n)}`;
const usd2 = (n: number): string => (n > 0 && n < 0.005 ? '< $0.01' : `$${n.toFixed(2)}`);
const kb = (bytes: number): string => `${sig(bytes / 1000)} KB`;
const mb = (bytes: number): string => `${sig(bytes / 1e6)} MB`;

/** The one figure whose metric starts with `metric`; a missing figure is an error, not an empty cell. */
function figure(report: BenchResults, metric: string, source: string): BenchFigure {
  const found = report.figures.find((f) => f.metric.startsWith(metric));
  if (!found) throw new MissingResultError(`${source} has no figure "${metric}"`);
  return found;
}

/** A number that a figure's note carries, e.g. `cold p99 (\S+) ms`. */
function fromNote(f: BenchFigure, pattern: RegExp): number {
  const m = pattern.exec(f.note ?? '');
  if (!m) throw new MissingResultError(`the note of "${f.metric}" does not match ${String(pattern)}`);
  return Number(m[1]!.replace(/,/g, ''));
}

/** A link from a chapter under docs/ to a results file. */
const link = (path: string) => `[\`bench/results/${path}\`](../bench/results/${path})`;
const runOf = (r: BenchResults) =>
  `${r.quick ? 'quick ' : ''}run of ${r.startedAt.slice(0, 10)} on ${r.machine.cpus}× ${r.machine.cpuModel}`;

// ---- the speed layer by cardinality (bench/results/latest-quick.json, the speed section)

const QUICK = 'latest-quick.json';
const SPEED_URLS = [
  ['100', '100'],
  ['10k', '10,000'],
  ['100k', '100,000'],
  ['1M', '1,000,000'],
] as const;

function speedAt(r: Results, urls: string, batch: string) {
  const q = r.bench(QUICK);
  const at = `at ${urls} urls/day, ${batch}-record batches`;
  const f = (metric: string) => figure(q, metric, QUICK);
  return {
    writes: f(`speed writes per record ${at}`),
    units: f(`speed write units per record ${at}`),
    previousWrites: f(`previous design (one write per cell): speed writes per record ${at}`),
    previousUnits: f(`previous design (one write per cell): speed write units per record ${at}`),
    visitors: f(`speed write units per record with visitor sets ${at}`),
    urlBytes:
      batch === '1000' ? f(`url counter bytes stored per 1,000 records at ${urls} urls/day`) : undefined,
  };
}

function speedTable(r: Results): string {
  const rows = SPEED_URLS.flatMap(([label, urls]) =>
    ['100', '1000'].map((batch) => {
      const s = speedAt(r, urls, batch);
      const bold = (x: string) => (label === '100k' && batch === '1000' ? `**${x}**` : x);
      const bytes = s.urlBytes
        ? `${int(s.urlBytes.value)} (${int(fromNote(s.urlBytes, /previous design: (\d+)/))})`
        : '';
      return (
        `| ${bold(label)} | ${bold(int(Number(batch)))} | ${bold(sig(s.writes.value))} (${sig(s.previousWrites.value)} · ${sig(s.writes.baseline!)}) ` +
        `| ${bold(sig(s.units.value))} (${sig(s.previousUnits.value)} · ≥ ${sig(s.units.baseline!)}) | ${sig(s.visitors.baseline!)} | ${bytes} |`
      );
    }),
  );
  return [
    '| urls/day | batch | writes/record (previous · naive) | WCU/record (previous · naive) | WCU/record without visitor sets | url bytes stored per 1,000 records (previous) |',
    '| ---: | ---: | --- | --- | --- | --- |',
    ...rows,
    '',
    `From the ${runOf(r.bench(QUICK))}: ${link('latest-quick.md')}.`,
  ].join('\n');
}

// ---- the cardinality axis (bench/results/cardinality/urls-*.json, one full run per cardinality)

const CARDINALITIES = [
  ['100', '100'],
  ['10,000', '10000'],
  ['100,000', '100000'],
  ['1,000,000', '1m'],
] as const;
const cardinalityFile = (file: string) => `cardinality/urls-${file}.json`;

function cardinalityFigure(r: Results, file: string, metric: string): BenchFigure {
  const path = cardinalityFile(file);
  const report = r.bench(path);
  return figure(report, metric, path);
}

function cardinalityBatchTable(r: Results): string {
  const rows = CARDINALITIES.map(([urls, file]) => {
    const f = (metric: string) => cardinalityFigure(r, file, `${urls} urls/day: ${metric}`);
    const distinct = f('distinct urls in a day');
    const writes = f('batch run for one new hour');
    const bytes = f('Parquet bytes read by that run');
    const idle = f('batch run with nothing new');
    return `| ${urls} (${int(distinct.value)}) | ${int(writes.value)} (${int(writes.baseline!)}) | ${int(bytes.value)} (${int(bytes.baseline!)}) | ${int(idle.value)} writes |`;
  });
  return [
    '| urls/day (distinct in a day) | one new hour: writes (previous design) | Parquet bytes read (previous) | run with nothing new |',
    '| --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

const RANGES = ['1 h', '24 h', '7 d', '30 d'] as const;

function cardinalityApiTable(r: Results): string {
  const rows = CARDINALITIES.flatMap(([urls, file]) =>
    RANGES.map((range) => {
      const f = (what: string) =>
        cardinalityFigure(r, file, `${urls} urls/day: by=url&top=10 over ${range}, ${what}`);
      const cold = f('cold p50 / p99');
      const warm = f('warm p50 / p99');
      const bytes = f('bytes read cold');
      return (
        `| ${urls} | ${range} | ${sig(cold.value)} / ${sig(fromNote(cold, /cold p99 ([\d.,]+) ms/))} ms ` +
        `| ${sig(warm.value)} / ${sig(fromNote(warm, /warm p99 ([\d.,]+) ms/))} ms ` +
        `| ${int(bytes.value)} B / ${fromNote(bytes, /^(\d+) requests/)} | ${int(cold.baseline!)} ms, ${int(bytes.baseline!)} B |`
      );
    }),
  );
  return [
    '| urls/day | range | cold p50 / p99 | warm p50 / p99 | bytes / requests read cold | naive: read every value (cold, bytes) |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    `One full run per cardinality (\`npm run bench -- --only cardinality --urls N\`): ${CARDINALITIES.map(
      ([urls, file]) => `[${urls}](../bench/results/cardinality/urls-${file}.md)`,
    ).join(', ')}.`,
  ].join('\n');
}

function cardinalityMillionRun(r: Results): string {
  const report = r.bench(cardinalityFile('1m'));
  const distinct = cardinalityFigure(r, '1m', '1,000,000 urls/day: distinct urls in a day');
  return `The 1M-urls run took ${int(report.durationSeconds / 60)} minutes on ${report.machine.cpus}× ${report.machine.cpuModel} (${distinct.note})`;
}

const coldP99 = (r: Results, file: string, urls: string, range: string) =>
  `${sig(fromNote(cardinalityFigure(r, file, `${urls} urls/day: by=url&top=10 over ${range}, cold p50 / p99`), /cold p99 ([\d.,]+) ms/))} ms`;

// ---- filters (docs/filters.md): the speed layer's rollup blocks and the filter axis of the quick run

function rollupFigure(r: Results): string {
  const f = figure(
    r.bench(QUICK),
    'speed write units per record with rollup blocks for filters at 100,000 urls/day, 1000-record batches',
    QUICK,
  );
  return (
    `${sig(f.value)} WCU per record with the rollup blocks, ${sig(f.baseline!)} for the counters alone: ` +
    `${sig(f.ratio!, 2)}× (${f.note}). From the ${runOf(r.bench(QUICK))}: ${link('latest-quick.md')}.`
  );
}

const FILTER_SHAPES = [
  'by=url&filter=country:DE',
  'by=country&filter=url:<mid-ranked url>',
  'by=url&filter=country:DE&filter=browser:FF',
] as const;

/** The filter axis's rows of one results file: `urls` per day, over `ranges`, every shape. */
function filterAxisRows(
  report: BenchResults,
  path: string,
  urls: string,
  ranges: readonly string[],
): string[] {
  return ranges.flatMap((range) =>
    FILTER_SHAPES.map((shape) => {
      const f = (what: string) => figure(report, `${urls} urls/day: ${shape} over ${range}, ${what}`, path);
      const cold = f('cold p50 / p99');
      const warm = f('warm p50 / p99');
      const bytes = f('bytes read cold');
      return (
        `| ${urls} | ${range} | \`${shape.replace(/\|/g, '\\|')}\` | ${sig(cold.value)} / ${sig(fromNote(cold, /cold p99 ([\d.,]+) ms/))} ms ` +
        `| ${sig(warm.value)} / ${sig(fromNote(warm, /warm p99 ([\d.,]+) ms/))} ms ` +
        `| ${int(bytes.value)} B / ${fromNote(bytes, /^(\d+) requests/)} | ${int(cold.baseline!)} ms, ${int(bytes.baseline!)} B / ${fromNote(bytes, /vs (\d+) for/)} |`
      );
    }),
  );
}

const FILTER_AXIS_HEADER = [
  '| urls/day | range | query | cold p50 / p99 | warm p50 / p99 | bytes / requests read cold | naive full read (cold p50, bytes / requests) |',
  '| --- | --- | --- | --- | --- | --- | --- |',
];

function filterAxisTable(r: Results): string {
  const q = r.bench(QUICK);
  return [
    ...FILTER_AXIS_HEADER,
    ...filterAxisRows(q, QUICK, '100,000', ['24 h', '7 d']),
    '',
    `From the ${runOf(q)}: ${link('latest-quick.md')}; 1M urls/day and 30 days are the full run's (below).`,
  ].join('\n');
}

/** The filter axis at a million urls a day (`npm run bench -- --only filter-scale`, bench/filter-scale.ts). */
function filterAxisMillionTable(r: Results): string {
  const path = 'filter-scale/urls-1m.json';
  const report = r.bench(path);
  const ranges = ['1 h', '24 h', '7 d', '30 d'].filter((range) =>
    report.figures.some((f) => f.metric.includes(` over ${range}, `)),
  );
  const cube = figure(report, '1,000,000 urls/day: cube rows written', path);
  return [
    ...FILTER_AXIS_HEADER,
    ...filterAxisRows(report, path, '1,000,000', ranges),
    '',
    `${int(cube.value)} cube rows (${cube.note}). From the ${runOf(report)}: ${link('filter-scale/urls-1m.md')} (\`npm run bench -- --only filter-scale\`).`,
  ].join('\n');
}

// ---- the cost model (bench/results/cost/*.json, npm run figures)

const TEN_K = COST_CASES[0]!.name;
const ONE_M = COST_CASES[1]!.name;
const WINDOW_5 = COST_CASES[2]!.name;

function costTable(r: Results): string {
  const a = r.cost(TEN_K);
  const b = r.cost(ONE_M);
  const services = [...new Set([...Object.keys(a.ours.byService), ...Object.keys(a.naive.byService)])];
  const cell = (e: CostEstimate, s: string) => usd0(e.byService[s] ?? 0);
  return [
    '| service | 10k urls/day | naive | 1M urls/day | naive |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...services.map(
      (s) => `| ${s} | ${cell(a.ours, s)} | ${cell(a.naive, s)} | ${cell(b.ours, s)} | ${cell(b.naive, s)} |`,
    ),
    `| **total per month** | **${usd0(a.ours.total)}** | **${usd0(a.naive.total)}** | **${usd0(b.ours.total)}** | **${usd0(b.naive.total)}** |`,
    `| per million events | ${usd2(a.ours.perMillionEvents)} | ${usd2(a.naive.perMillionEvents)} | ${usd2(b.ours.perMillionEvents)} | ${usd2(b.naive.perMillionEvents)} |`,
    '',
    `Every line item and input: ${[TEN_K, ONE_M, WINDOW_5].map((n) => link(`cost/${n}.md`)).join(', ')}.`,
  ].join('\n');
}

/** The cost of sites: the 10k-urls case as one site and spread over more (docs/sites.md). */
function sitesCostTable(r: Results): string {
  const cases = [TEN_K, ...COST_CASES.slice(3).map((c) => c.name)];
  const rows = cases.map((name) => {
    const c = r.cost(name);
    const i = c.inputs;
    return (
      `| ${i.sites ?? 1} | ${sig(i.recordsPerInvocation)} | ${sig(i.speedWritesPerRecord, 2)} | ${sig(i.speedWriteUnitsPerRecord ?? i.speedWritesPerRecord, 2)} ` +
      `| ${int(c.viewStorePerRun.puts)} / ${int(c.viewStorePerRun.gets)} | ${usd0(c.ours.byService.DynamoDB ?? 0)} | ${usd0(c.ours.total)} |`
    );
  });
  return [
    '| sites | records per speed invocation | speed writes/record | WCU/record | view store PUTs / GETs per run | DynamoDB per month | total per month |',
    '| ---: | ---: | ---: | ---: | --- | ---: | ---: |',
    ...rows,
    '',
    `1,000 events/s and 10,000 urls/day spread evenly over the sites: ${cases.map((n) => link(`cost/${n}.md`)).join(', ')}.`,
  ].join('\n');
}

/** A batch run of one new hour, one site against several (bench/sites.ts, the quick run). */
function sitesBatchTable(r: Results): string {
  const q = r.bench(QUICK);
  const rows = ['4', '16'].map((count) => {
    const f = (what: string) =>
      figure(
        q,
        `batch run of one new hour over ${count} sites (20,000 events, 1,000 urls in the hour): ${what}`,
        QUICK,
      );
    const requests = f('view-store requests');
    const writes = f('rows + objects written');
    const bytes = f('view-store bytes moved');
    const parquet = f('Parquet bytes read');
    return (
      `| ${count} | ${int(requests.value)} (${int(requests.baseline!)}) | ${int(writes.value)} (${int(writes.baseline!)}) ` +
      `| ${mb(bytes.value)} (${mb(bytes.baseline!)}) | ${kb(parquet.value)} (${kb(parquet.baseline!)}) |`
    );
  });
  return [
    '| sites | view-store requests (one site) | rows + objects written (one site) | view-store bytes moved (one site) | Parquet read (one site) |',
    '| ---: | --- | --- | --- | --- |',
    ...rows,
    '',
    `The same 20,000 events of one hour, as one site and spread over several, from the ${runOf(q)}: ${link('latest-quick.md')} (\`npx tsx bench/sites.ts\`).`,
  ].join('\n');
}

const viewStoreUsd = (c: CostReport) =>
  c.ours.lines.filter((l) => l.item.startsWith('view store')).reduce((sum, l) => sum + l.usd, 0);

function collectionTable(r: Results): string {
  const c = r.cost(TEN_K);
  // Page views a month: the bill's total over its price per million.
  const millions = c.ours.total / c.ours.perMillionEvents;
  const m = (usd: number) => usd2(usd / millions);
  return [
    '| line | this design | its floor |',
    '| --- | ---: | ---: |',
    ...c.collection.lines.map((l) => `| ${l.service}: ${l.item} | ${m(l.usd)} | ${m(l.floorUsd)} |`),
    `| **total** | **${usd2(c.collection.perMillionEvents)}** | **${m(c.collection.floorTotal)}** |`,
    '',
    '| previous design (CloudFront → collector HTTP API → Lambda, no WAF, `/pv.js` cached an hour) | per million |',
    '| --- | ---: |',
    ...c.previousCollection.lines.map((l) => `| ${l.service}: ${l.item} | ${m(l.usd)} |`),
    `| **total** | **${usd2(c.previousCollection.perMillionEvents)}** |`,
    '',
    `From \`${c.command}\` (${link(`cost/${TEN_K}.md`)}, with the bench figures of \`${c.bench ?? 'no bench run'}\`).`,
  ].join('\n');
}

// ---- the registry: every ID the docs may use

type Render = (r: Results) => string;

const quick = (r: Results, metric: string) => figure(r.bench(QUICK), metric, QUICK);
const sketchBytes = (r: Results, visitors: string) =>
  quick(r, `bytes of a ${visitors}-visitor sketch as JSON`);
const rmsErrors = (r: Results) =>
  ['1,000', '10,000', '100,000'].map(
    (v) => quick(r, `relative error of the estimate at ${v} visitors`).value,
  );

export const FIGURES: Readonly<Record<string, Render>> = {
  'speed-rollup-wcu': rollupFigure,
  'filter-axis': filterAxisTable,
  'filter-axis-1m': filterAxisMillionTable,
  'speed-table': speedTable,
  'speed-100k-writes': (r) => sig(speedAt(r, '100,000', '1000').writes.value, 2),
  'speed-100k-previous-writes': (r) => sig(speedAt(r, '100,000', '1000').previousWrites.value, 2),
  'speed-100k-units': (r) => sig(speedAt(r, '100,000', '1000').units.value, 2),
  'speed-100k-units-sources': (r) => {
    const f = quick(
      r,
      "speed write units per record with the sources' dimensions at 100,000 urls/day, 1000-record batches",
    );
    return `${sig(f.value, 2)} write units per record against ${sig(f.baseline!, 2)} for the five cells counted before (${sig(f.ratio!, 2)}×)`;
  },
  'sites-batch-table': sitesBatchTable,
  'sites-cost-table': sitesCostTable,
  'speed-100k-units-without-visitors': (r) => sig(speedAt(r, '100,000', '1000').visitors.baseline!, 2),
  'speed-100k-previous-units': (r) => sig(speedAt(r, '100,000', '1000').previousUnits.value, 2),
  'speed-100-visitors-ratio': (r) => `${sig(speedAt(r, '100', '1000').visitors.ratio!, 2)}×`,
  'speed-100k-visitors-ratio': (r) => `${sig(speedAt(r, '100,000', '1000').visitors.ratio!, 2)}×`,
  'speed-small-batch-writes': (r) => {
    return range(SPEED_URLS.map(([, urls]) => speedAt(r, urls, '100').writes.value));
  },
  'speed-small-batch-units': (r) => {
    return range(SPEED_URLS.map(([, urls]) => speedAt(r, urls, '100').units.value));
  },
  'dedup-cpu-share': (r) => {
    const f = quick(r, 'decode+validate+aggregate with eventIds');
    return `${int((1 - f.value / f.baseline!) * 100)}%`;
  },
  'cardinality-batch-table': cardinalityBatchTable,
  'cardinality-api-table': cardinalityApiTable,
  'cardinality-1m-run': cardinalityMillionRun,
  'cardinality-hour-writes': (r) => {
    const all = CARDINALITIES.map(
      ([urls, file]) => cardinalityFigure(r, file, `${urls} urls/day: batch run for one new hour`).value,
    );
    return `${int(Math.min(...all))} to ${int(Math.max(...all))} writes`;
  },
  'cardinality-1m-hour-writes': (r) =>
    `${int(cardinalityFigure(r, '1m', '1,000,000 urls/day: batch run for one new hour').value)} rows and objects`,
  'cardinality-1m-30d-cold-p99': (r) => coldP99(r, '1m', '1,000,000', '30 d'),
  'cardinality-1m-7d-cold-p99': (r) => coldP99(r, '1m', '1,000,000', '7 d'),
  'cardinality-1m-30d-bytes': (r) =>
    kb(cardinalityFigure(r, '1m', '1,000,000 urls/day: by=url&top=10 over 30 d, bytes read cold').value),
  'cardinality-1m-30d-naive': (r) => {
    const cold = cardinalityFigure(r, '1m', '1,000,000 urls/day: by=url&top=10 over 30 d, cold p50 / p99');
    const bytes = cardinalityFigure(r, '1m', '1,000,000 urls/day: by=url&top=10 over 30 d, bytes read cold');
    return `${sig(cold.baseline! / 1000, 2)} s and ${mb(bytes.baseline!)}`;
  },
  'sketch-sparse-bytes': (r) => kb(fromNote(sketchBytes(r, '256'), /binary form (\d+) bytes/)),
  'sketch-sparse-json-bytes': (r) => kb(sketchBytes(r, '256').value),
  'sketch-dense-bytes': (r) => kb(fromNote(sketchBytes(r, '100,000'), /binary form (\d+) bytes/)),
  'sketch-rms-error': (r) => `${range(rmsErrors(r))}%`,
  'sketch-week-merge': (r) => {
    const time = quick(r, '7 days of hourly buckets: parse + union');
    const bytes = quick(r, '7 days of hourly buckets: bytes read');
    return `${sig(time.value, 2)} ms against ${sig(time.baseline!, 2)} ms for sets of user ids, reading ${mb(bytes.value)} against ${mb(bytes.baseline!)}`;
  },
  'cost-table': costTable,
  'cost-records-per-invocation': (r) => int(r.cost(TEN_K).inputs.recordsPerInvocation),
  'cost-10k-speed': (r) => {
    const i = r.cost(TEN_K).inputs;
    return `${sig(i.speedWritesPerRecord, 2)} writes and ${sig(i.speedWriteUnitsPerRecord ?? i.speedWritesPerRecord, 2)} write units`;
  },
  'cost-1m-speed': (r) => {
    const i = r.cost(ONE_M).inputs;
    return `${sig(i.speedWritesPerRecord, 2)} and ${sig(i.speedWriteUnitsPerRecord ?? i.speedWritesPerRecord, 2)}`;
  },
  'cost-ingestion-share': (r) => {
    const c = r.cost(TEN_K).ours;
    return `${int((((c.byService['Kinesis'] ?? 0) + (c.byService['Firehose'] ?? 0)) / c.total) * 100)}%`;
  },
  'cost-window-5-total': (r) => usd0(r.cost(WINDOW_5).ours.total),
  'cost-1m-view-store-run': (r) => {
    const w = r.cost(ONE_M).viewStorePerRun;
    return `${int(w.puts)} PUTs and ${int(w.gets)} GETs`;
  },
  'cost-1m-view-gets-per-query': (r) => int(r.cost(ONE_M).inputs.viewGetsPerQuery),
  'cost-1m-view-store-usd': (r) => usd0(viewStoreUsd(r.cost(ONE_M))),
  'cost-athena': (r) => usd0(r.cost(TEN_K).ours.byService['Athena'] ?? 0),
  'collection-table': collectionTable,
  'collection-per-million': (r) => usd2(r.cost(TEN_K).collection.perMillionEvents),
  'collection-floor-per-million': (r) => {
    const c = r.cost(TEN_K);
    return usd2(c.collection.floorTotal / (c.ours.total / c.ours.perMillionEvents));
  },
  'collection-loads-within-2': (r) => sig(r.cost(TEN_K).trackerLoadsWithin2, 2),
  'collection-at-0.2-loads': (r) =>
    usd2(r.cost(TEN_K).collectionByTrackerLoads.find((l) => l.loads === 0.2)!.perMillionEvents),
};

// ---- rewriting Markdown

const BLOCK = /<!-- bench:([\w.-]+) -->([\s\S]*?)<!-- \/bench -->/g;

export class FigureMarkerError extends Error {
  override readonly name = 'FigureMarkerError';
}

/** The IDs a document's markers use, in order. */
export function markersIn(text: string): string[] {
  return [...text.matchAll(BLOCK)].map((m) => m[1]!);
}

/**
 * The document with every marked figure rendered from `results`. A multi-line rendering (a table) stands on lines
 * of its own between the markers; a figure in a sentence stays inline. An unknown ID or an unclosed marker fails.
 */
export function renderDocument(text: string, results: Results, figures = FIGURES): string {
  const opened = (text.match(/<!-- bench:[\w.-]+ -->/g) ?? []).length;
  const closed = (text.match(/<!-- \/bench -->/g) ?? []).length;
  if (opened !== closed || opened !== markersIn(text).length)
    throw new FigureMarkerError(`${opened} figure markers opened, ${closed} closed`);
  return text.replace(BLOCK, (_, id: string) => {
    const render = figures[id];
    if (!render)
      throw new FigureMarkerError(`unknown figure "${id}" (bench/support/doc-figures.ts lists them)`);
    const out = render(results);
    return out.includes('\n')
      ? `<!-- bench:${id} -->\n\n${out}\n\n<!-- /bench -->`
      : `<!-- bench:${id} -->${out}<!-- /bench -->`;
  });
}

/** The Markdown files that may carry figures: the README and the chapters under docs/. */
export function documents(root = '.'): string[] {
  const docs = join(root, 'docs');
  return [
    join(root, 'README.md'),
    ...(existsSync(docs)
      ? readdirSync(docs)
          .filter((f) => f.endsWith('.md'))
          .sort()
          .map((f) => join(docs, f))
      : []),
  ];
}

/** Rewrites every marked figure of every document from `bench/results/`; returns the files that changed. */
export function refreshDocs(root = '.'): string[] {
  const results = resultsIn(join(root, 'bench', 'results'));
  const changed: string[] = [];
  for (const file of documents(root)) {
    const text = readFileSync(file, 'utf8');
    const next = renderDocument(text, results);
    if (next !== text) {
      writeFileSync(file, next);
      changed.push(file);
    }
  }
  return changed;
}
