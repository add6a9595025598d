import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { BenchReport } from '../../bench/support/types.js';

/** The figures `npm run bench` must report (docs/performance.md). */
const REQUIRED = [
  ['speed', 'decode+validate+aggregate, records/s per core'],
  ['speed', 'whole handler to a counting sink, records/s per core'],
  ['speed', 'DynamoDB writes per record'],
  ['speed', 'wall time of one 10000-record batch on DynamoDB Local'],
  ...['100', '10,000', '100,000', '1,000,000'].flatMap((urls) =>
    ['100', '1000'].flatMap((size) => [
      ['speed', `speed writes per record at ${urls} urls/day, ${size}-record batches`],
      ['speed', `speed write units per record at ${urls} urls/day, ${size}-record batches`],
      ['speed', `speed write units per record with visitor sets at ${urls} urls/day, ${size}-record batches`],
    ]),
  ),
  ['batch', 'DuckDB: hourly views of 1M events'],
  ['batch', 'Parquet bytes read per hourly run'],
  ...['1-hour', '24-hour', '7-day'].flatMap((range) =>
    [
      '',
      ' by url',
      ...(range === '1-hour' ? [] : [' metrics=visitors', ' by url, metrics=visitors']),
    ].flatMap((shape) => [
      ['api', `${range}${shape}: latency p50 over HTTP`],
      ['api', `${range}${shape}: latency p99 over HTTP`],
      ['api', `${range}${shape}: requests per query`],
    ]),
  ),
  // The quick run's cardinality axis stops at 100,000 urls/day and 7 days; the full run adds 1M and 30 days.
  ...['100', '10,000', '100,000'].flatMap((urls) => [
    ['cardinality', `${urls} urls/day: batch run for one new hour, rows + objects written`],
    ['cardinality', `${urls} urls/day: Parquet bytes read by that run`],
    ['cardinality', `${urls} urls/day: batch run with nothing new, view writes`],
    ...['1 h', '24 h', '7 d'].flatMap((span) => [
      ['cardinality', `${urls} urls/day: by=url&top=10 over ${span}, cold p50 / p99`],
      ['cardinality', `${urls} urls/day: by=url&top=10 over ${span}, warm p50 / p99`],
      ['cardinality', `${urls} urls/day: by=url&top=10 over ${span}, bytes read cold`],
    ]),
  ]),
  // The filter axis (docs/filters.md): quick keeps 100,000 urls/day up to 7 days.
  ...['24 h', '7 d'].flatMap((span) =>
    [
      'by=url&filter=country:DE',
      'by=country&filter=url:<mid-ranked url>',
      'by=url&filter=country:DE&filter=browser:FF',
    ].flatMap((shape) => [
      ['cardinality', `100,000 urls/day: ${shape} over ${span}, cold p50 / p99`],
      ['cardinality', `100,000 urls/day: ${shape} over ${span}, warm p50 / p99`],
      ['cardinality', `100,000 urls/day: ${shape} over ${span}, bytes read cold`],
    ]),
  ),
  [
    'speed',
    'speed write units per record with rollup blocks for filters at 100,000 urls/day, 1000-record batches',
  ],
  ['e2e', 'freshness p50'],
  ['e2e', 'freshness p99'],
  ['collect', 'single-event requests over HTTP to kinesis-local: throughput'],
  ['collect', 'single-event requests over HTTP to kinesis-local: latency p50'],
  ['collect', 'single-event requests over HTTP to kinesis-local: latency p99'],
  ['collect', 'handler time per single-event request'],
  ['collect', 'handler time per event in 50-event batches'],
  ['collect', 'CPU per event: parse, validate, enrich'],
  ['collect', 'tracker script /pv.js, gzipped'],
  ['collect', 'collection cost per million page views at 1,000 page views/s'],
  ['collect', 'collection cost floor per million page views'],
  ['sketch', 'bytes of a'],
  ['sketch', '7 days of hourly buckets: parse + union + estimate visitors'],
] as const;

const COMMITTED = ['bench/results/latest-quick.json', 'bench/results/latest-quick.md'];

describe('npm run bench -- --quick', () => {
  it('runs every section and writes a JSON and Markdown table with every figure, to a temporary folder', () => {
    // `npm test` leaves the work tree as it found it: only `npm run bench` updates the committed results.
    const committed = COMMITTED.map((path) => readFileSync(path, 'utf8'));
    const out = mkdtempSync(join(tmpdir(), 'bench-'));
    onTestFinished(() => rmSync(out, { recursive: true, force: true }));
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--out', out], {
      encoding: 'utf8',
    });
    expect(run.status, run.stderr.slice(-2000)).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'latest-quick.json'), 'utf8')) as BenchReport;
    expect(report.failures).toEqual([]);
    expect(report.quick).toBe(true);
    for (const [section, metric] of REQUIRED) {
      const figure = report.figures.find((f) => f.section === section && f.metric.startsWith(metric));
      expect(figure, `${section}: ${metric}`).toBeDefined();
      expect(Number.isFinite(figure!.value)).toBe(true);
      expect(figure!.unit.length).toBeGreaterThan(0);
    }
    const baselines = report.figures.filter((f) => f.baseline !== undefined);
    expect(baselines.length).toBeGreaterThanOrEqual(5);
    for (const f of baselines) expect(Number.isFinite(f.ratio)).toBe(true);
    expect(existsSync(join(out, 'latest-quick.md'))).toBe(true);
    expect(run.stdout).toContain('naive baseline');
    expect(COMMITTED.map((path) => readFileSync(path, 'utf8'))).toEqual(committed);
  }, 1_200_000);
});
