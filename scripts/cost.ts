import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { currentDesign } from '../bench/support/speed-design.js';
import { chunks } from '../bench/support/stats.js';
import { generatedSites, PageViewGenerator } from '../traffic/generator.js';
import { DEFAULT_SETTINGS, DEFAULT_SPEED_SOURCE } from '../shared/resources.js';
import { KinesisRecordBuilder } from '../local/kinesis-records.js';
import { asRecords, parquetBytes } from '../local/parquet.js';
import type { BenchReport } from '../bench/support/types.js';
import type { CostReport } from '../bench/support/doc-figures.js';
import { buildTracker } from '../shared/collection/tracker.js';
import {
  collectionInputs,
  COLLECTION_ASSUMPTIONS,
  estimateCollectionCost,
  estimatePreviousCollectionCost,
  HTTPS_FLOOR_PER_MILLION,
  trackerLoadsWithin,
  estimateMonthlyCost,
  estimateNaiveMonthlyCost,
  PRICES_US_EAST_1,
  SECONDS_PER_MONTH,
  type CostInputs,
  type CostLine,
  viewStoreWorkPerRun,
} from '../bench/support/cost-model.js';
import { parseNumber, runCli, UsageError } from '../tools/cli.js';

/**
 * `npm run cost -- --events-per-second N`: the monthly AWS bill of this design and of the naive one, from
 * per-event figures measured here (record and Parquet sizes, DynamoDB writes per record at the batch size
 * this rate gives) and in the latest bench run (CPU per record, API requests and latency), at list prices.
 */

const USAGE = `usage: npm run cost -- [options]

  --events-per-second N   page views per second (default 100)
  --queries-per-second N  API queries per second (default 1)
  --filtered-queries-per-second N  filtered API queries per second, besides those (default 0; docs/filters.md)
  --urls-per-day N        distinct urls per day (default 10000); sets the speed writes and the view store
  --sites N               sites the traffic and the urls are spread over, evenly (default 1; docs/sites.md)
  --batching-window S     the speed mapping's batching window in seconds (default ${DEFAULT_SPEED_SOURCE.maxBatchingWindowSeconds})
  --retention-months N    months of Parquet kept in S3 (default 12)
  --tracker-loads-per-page-view F
                          loads of the immutable /pv.js per page view (default ${COLLECTION_ASSUMPTIONS.trackerLoadsPerPageView})
  --out PATH              also write PATH.json (every figure) and PATH.md (this output), e.g. bench/results/cost/x;
                          the docs' cost figures are generated from such files (npm run figures)

Prints the monthly bill by service next to the naive design, every line item and every assumption.
Per-event figures are measured now; per-query figures come from bench/results (npm run bench).`;

const usd = (n: number) =>
  `$${n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;

function latestBench(): { report?: BenchReport; path?: string } {
  for (const path of ['bench/results/latest.json', 'bench/results/latest-quick.json']) {
    if (existsSync(path)) return { report: JSON.parse(readFileSync(path, 'utf8')) as BenchReport, path };
  }
  return {};
}

/**
 * View-store requests of a cold `by=url&top=10` over 24 h, from the bench's cardinality axis at the
 * cardinality nearest to `urlsPerDay` (on a log scale).
 */
/**
 * A figure of `by=url&filter=country:DE` over 24 h at the cardinality nearest `urlsPerDay`: its value, or the number
 * its note matches.
 */
function filteredFigure(
  report: BenchReport | undefined,
  urlsPerDay: number,
  what: string,
  note?: RegExp,
): number | undefined {
  const measured = (report?.figures ?? [])
    .filter((f) => f.metric.endsWith(`urls/day: by=url&filter=country:DE over 24 h, ${what}`))
    .map((f) => ({
      urls: Number(f.metric.split(' ')[0]!.replace(/,/g, '')),
      value: note ? Number(note.exec(f.note ?? '')?.[1]) : f.value,
    }))
    .filter((m) => Number.isFinite(m.value));
  if (measured.length === 0) return undefined;
  measured.sort((a, b) => Math.abs(Math.log(a.urls / urlsPerDay)) - Math.abs(Math.log(b.urls / urlsPerDay)));
  return measured[0]!.value;
}

function viewGets(report: BenchReport | undefined, urlsPerDay: number): number | undefined {
  const measured = (report?.figures ?? [])
    .map(
      (f) =>
        /^([\d,]+) urls\/day: by=url&top=10 over 24 h, bytes read cold$/.exec(f.metric) && {
          f,
          m: /^(\d+) requests/.exec(f.note ?? ''),
        },
    )
    .filter((x): x is { f: BenchReport['figures'][number]; m: RegExpExecArray } => Boolean(x?.m))
    .map(({ f, m }) => ({ urls: Number(f.metric.split(' ')[0]!.replace(/,/g, '')), requests: Number(m[1]) }));
  if (measured.length === 0) return undefined;
  measured.sort((a, b) => Math.abs(Math.log(a.urls / urlsPerDay)) - Math.abs(Math.log(b.urls / urlsPerDay)));
  return measured[0]!.requests;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'events-per-second': { type: 'string' },
      'queries-per-second': { type: 'string', default: '1' },
      'filtered-queries-per-second': { type: 'string', default: '0' },
      'retention-months': { type: 'string', default: '12' },
      'batching-window': { type: 'string', default: String(DEFAULT_SPEED_SOURCE.maxBatchingWindowSeconds) },
      'urls-per-day': { type: 'string', default: '10000' },
      sites: { type: 'string', default: '1' },
      'tracker-loads-per-page-view': {
        type: 'string',
        default: String(COLLECTION_ASSUMPTIONS.trackerLoadsPerPageView),
      },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const eventsPerSecond = parseNumber(values['events-per-second'] ?? '100', '--events-per-second', {
    min: 0.001,
    max: 1e6,
  })!;
  const filteredQueriesPerSecond =
    parseNumber(values['filtered-queries-per-second'], '--filtered-queries-per-second', { min: 0 }) ?? 0;
  const apiQueriesPerSecond = parseNumber(values['queries-per-second'], '--queries-per-second', {
    min: 0,
    max: 1e5,
  })!;
  const retentionMonths = parseNumber(values['retention-months'], '--retention-months', {
    min: 1,
    max: 120,
  })!;
  const window = parseNumber(values['batching-window'], '--batching-window', { min: 0, max: 300 })!;
  const urlsPerDay = parseNumber(values['urls-per-day'], '--urls-per-day', { min: 1, max: 1e9 })!;
  const trackerLoads = parseNumber(values['tracker-loads-per-page-view'], '--tracker-loads-per-page-view', {
    min: 0,
    max: 1,
  })!;
  const sites = parseNumber(values.sites, '--sites', { min: 1, max: 10_000 })!;
  if (!Number.isInteger(sites)) throw new UsageError('--sites must be a whole number');
  const assumptions: string[] = [];

  // Measured now: sizes, and writes per record at the batch size this rate gives each shard.
  const now = Date.now();
  const generator = new PageViewGenerator({ seed: 3, startMs: now - 600_000, rate: eventsPerSecond });
  const sample = [...generator.take(40_000)];
  const recordBytes = sample.reduce((sum, r) => sum + r.data.byteLength, 0) / sample.length;
  const parquetPerEvent =
    (await parquetBytes(asRecords(sample.map((r) => r.event!)))).byteLength / sample.length;
  const shards = Math.max(
    4,
    Math.ceil(eventsPerSecond / 1000),
    Math.ceil((eventsPerSecond * recordBytes) / 1e6),
  );
  const recordsPerInvocation = Math.max(
    1,
    Math.min(DEFAULT_SPEED_SOURCE.batchSize, Math.round((eventsPerSecond / shards) * Math.max(1, window))),
  );
  // The real speed handler at this batch size and cardinality, against a table that charges DynamoDB's write
  // units (visitor sets included): what the speed layer's writes cost here.
  const shard = new KinesisRecordBuilder();
  const traffic = [
    ...new PageViewGenerator({
      seed: 4,
      startMs: now - 600_000,
      rate: Math.max(1, eventsPerSecond / shards),
      urlCount: urlsPerDay,
      sites: generatedSites(sites),
    }).take(20_000),
  ].map((r) => shard.record(r.data, now));
  const speedCost = await currentDesign(chunks(traffic, recordsPerInvocation));
  const speedWritesPerRecord = speedCost.writes / traffic.length;
  const speedWriteUnitsPerRecord = speedCost.writeUnits / traffic.length;

  // From the latest bench run, when there is one.
  const { report, path } = latestBench();
  const figure = (metric: string) => report?.figures.find((f) => f.metric.startsWith(metric));
  const handler = figure('whole handler to a counting sink');
  const apiLatency = figure('24-hour by url: latency p50');
  const apiRequests = figure('24-hour by url: requests per query');
  const fallback = <T>(value: T | undefined, dflt: T, what: string): T => {
    if (value === undefined) assumptions.push(`${what}: no bench figure found, assumed ${String(dflt)}`);
    return value ?? dflt;
  };
  const inputs: CostInputs = {
    eventsPerSecond,
    recordBytes,
    parquetBytesPerEvent: parquetPerEvent,
    shards,
    recordsPerInvocation,
    speedWritesPerRecord,
    speedWriteUnitsPerRecord,
    naiveWritesPerRecord: 1,
    speedCpuMicrosPerRecord: fallback(handler ? 1e6 / handler.value : undefined, 3, 'speed CPU µs/record'),
    naiveCpuMicrosPerRecord: fallback(
      handler?.baseline ? 1e6 / handler.baseline : undefined,
      5,
      'naive CPU µs/record',
    ),
    dynamoWriteLatencyMs: 5,
    lambdaMemoryGb: 1,
    batchRunsPerMonth: SECONDS_PER_MONTH / 60 / DEFAULT_SETTINGS.batchScheduleMinutes,
    // A run computes the hours that received objects: the hour H passes, plus the odd late hour.
    batchHoursPerRun: 1,
    athenaQueriesPerRun: 1 + 1 / (24 * (60 / DEFAULT_SETTINGS.batchScheduleMinutes)),
    scannedColumnShare: 0.85,
    apiQueriesPerSecond,
    dynamoReadsPerQuery: fallback(apiRequests?.value, 5, 'DynamoDB requests per API query'),
    apiLambdaMsPerQuery: fallback(apiLatency?.value, 20, 'API Lambda ms per query'),
    retentionMonths,
    urlsPerDay,
    viewGetsPerQuery: fallback(viewGets(report, urlsPerDay), 20, 'view-store GETs per API query'),
    sites,
    ...(filteredQueriesPerSecond > 0
      ? {
          filteredQueriesPerSecond,
          filteredRequestsPerQuery: fallback(
            filteredFigure(report, urlsPerDay, 'bytes read cold', /^(\d+) requests/),
            30,
            'store requests per filtered query',
          ),
          filteredLambdaMsPerQuery: fallback(
            filteredFigure(report, urlsPerDay, 'cold p50 / p99'),
            200,
            'API Lambda ms per filtered query',
          ),
        }
      : {}),
  };
  const ours = estimateMonthlyCost(inputs);
  const naive = estimateNaiveMonthlyCost(inputs);

  const services = [...new Set([...Object.keys(ours.byService), ...Object.keys(naive.byService)])];
  const rows = [
    ['service', 'this design', 'naive design'],
    ...services.map((s) => [s, usd(ours.byService[s] ?? 0), usd(naive.byService[s] ?? 0)]),
    ['total per month', usd(ours.total), usd(naive.total)],
    ['per million events', usd(ours.perMillionEvents), usd(naive.perMillionEvents)],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ');
  const storeWork = viewStoreWorkPerRun(inputs);
  const itemLine = (l: CostLine) =>
    `  ${l.service.padEnd(12)} ${l.item.padEnd(48)} ${usd(l.usd).padStart(12)}`;
  const out = [
    `Monthly AWS bill at ${eventsPerSecond.toLocaleString('en-US')} events/s (${((eventsPerSecond * SECONDS_PER_MONTH) / 1e6).toLocaleString('en-US', { maximumFractionDigits: 1 })} M events/month), ${apiQueriesPerSecond} API queries/s, ${PRICES_US_EAST_1.region} list prices`,
    '',
    line(rows[0]!),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.slice(1).map(line),
    '',
    'Line items (this design):',
    ...ours.lines.map(itemLine),
    '',
    'Measured and assumed inputs:',
    `  record size ${recordBytes.toFixed(0)} B (generator); Parquet ${parquetPerEvent.toFixed(1)} B/event (local writer, Snappy)`,
    `  ${shards} on-demand shards; ${recordsPerInvocation} records per speed invocation (batching window ${window} s; try --batching-window)`,
    `  speed writes per record: ${speedWritesPerRecord.toFixed(4)}, write units per record ${speedWriteUnitsPerRecord.toFixed(4)} (the real handler at that batch size and ${urlsPerDay.toLocaleString('en-US')} urls/day, visitor sets included) vs 1 (naive: one UpdateItem per event)`,
    `  speed CPU ${inputs.speedCpuMicrosPerRecord.toFixed(2)} µs/record vs naive ${inputs.naiveCpuMicrosPerRecord.toFixed(2)} µs/record${path ? ` (from ${path})` : ''}`,
    `  DynamoDB write latency ${inputs.dynamoWriteLatencyMs} ms (assumed, AWS single-digit ms); Lambda ${inputs.lambdaMemoryGb} GB arm64`,
    `  batch: ${inputs.batchRunsPerMonth.toFixed(0)} runs/month scanning ${inputs.batchHoursPerRun} h of Parquet (${(inputs.scannedColumnShare * 100).toFixed(0)}% of columns, assumed); naive: a full-table scan every run`,
    `  API: ${inputs.dynamoReadsPerQuery} DynamoDB reads and ${inputs.apiLambdaMsPerQuery} ms Lambda per query (24-hour query by url, bench)`,
    `  view store at ${urlsPerDay.toLocaleString('en-US')} distinct urls/day (--urls-per-day): per computing run ~${storeWork.puts.toFixed(0)} S3 PUTs and ~${storeWork.gets.toFixed(0)} GETs (lookup shards of ~1,000 rows; an upper bound: every url seen in every hour); ${inputs.viewGetsPerQuery} GETs per API query`,
    `  sites: ${sites} (--sites), traffic and urls spread evenly: Kinesis, Firehose, S3 and Athena follow the events alone (one` +
      ` scan serves every site); the speed writes above are measured at this spread (a site's counters are its own cells);` +
      ` the view store's requests per run grow with the sites (a day per site and dimension); an API query reads one site`,
    `  naive batch views: every row of a 6 h + 1 h window rewritten in DynamoDB every run (the previous design)`,
    `  S3: ${retentionMonths} months of Parquet kept; CloudWatch (beyond the GetMetricData of the delivery watermark), KMS and data transfer are not included`,
    ...assumptions.map((a) => `  ${a}`),
  ];

  // Collection from browsers: CloudFront, its WAF and the collector Lambda, before the stream.
  const collectorMs = figure('handler time per single-event request');
  // Said in the lines below (bench figure or assumed), not in the assumptions, which are printed already.
  const measuredMs = collectorMs?.value ?? COLLECTION_ASSUMPTIONS.minLambdaMsPerRequest;
  const tracker = buildTracker();
  const collect = collectionInputs({
    pageViewsPerSecond: eventsPerSecond,
    measuredLambdaMs: measuredMs,
    trackerGzipBytes: tracker.gzipBytes,
    trackerLoadsPerPageView: trackerLoads,
  });
  const collection = estimateCollectionCost(collect.ours);
  const previous = estimatePreviousCollectionCost(collect.previous);
  const millions = (eventsPerSecond * SECONDS_PER_MONTH) / 1e6;
  const perM = (monthly: number) => usd(monthly / millions).padStart(9);
  const sensitivity = [0, 0.05, 0.2, 1].map(
    (loads) =>
      `${loads} → ${usd(estimateCollectionCost({ ...collect.ours, trackerLoadsPerPageView: loads }).perMillionEvents)}`,
  );
  out.push(
    '',
    `Collection from browsers (the tracker, one page view per request), added when events come from web pages:`,
    `  ${'service'.padEnd(16)} ${'item'.padEnd(52)} ${'per month'.padStart(12)} ${'per M'.padStart(9)} ${'floor/M'.padStart(9)}`,
    ...collection.lines.map(
      (l) =>
        `  ${l.service.padEnd(16)} ${l.item.padEnd(52)} ${usd(l.usd).padStart(12)} ${perM(l.usd)} ${perM(l.floorUsd)}`,
    ),
    `  ${'total per month'.padEnd(69)} ${usd(collection.total).padStart(12)} ${perM(collection.total)} ${perM(collection.floorTotal)}`,
    '',
    `  per million page views: ${usd(collection.perMillionEvents)}   (HTTPS floor: CloudFront's request price, ${usd(HTTPS_FLOOR_PER_MILLION)};` +
      ` floor of this design's lines: ${usd(collection.floorTotal / millions)}; previous design: ${usd(previous.perMillionEvents)})`,
    `  previous design (CloudFront → collector HTTP API → Lambda, no WAF, /pv.js cached an hour):`,
    ...previous.lines.map(
      (l) => `    ${l.service.padEnd(14)} ${l.item.padEnd(52)} ${usd(l.usd).padStart(12)} ${perM(l.usd)}`,
    ),
    `  /pv.js loads per page view → per million page views: ${sensitivity.join(', ')};` +
      ` at most ${trackerLoadsWithin(2, collect.ours).toFixed(3)} keep collection within $2.00`,
    `  assumed: ${COLLECTION_ASSUMPTIONS.requestBytes} B to the origin and ${COLLECTION_ASSUMPTIONS.responseBytes} B back per request; ${trackerLoads} loads of`,
    `  /pv.js (${tracker.gzipBytes} B gzipped, immutable for a year) per page view (--tracker-loads-per-page-view); WAF on every request;`,
    `  collector Lambda 256 MB, ${collect.ours.lambdaMsPerRequest} ms per request (${collectorMs ? `bench: ${measuredMs} ms handler time per single-event request, ${path}` : 'assumed'}; at least`,
    `  ${COLLECTION_ASSUMPTIONS.minLambdaMsPerRequest} ms, a PutRecords round trip on AWS); CloudFront free tier not counted`,
  );
  process.stdout.write(out.join('\n') + '\n');
  if (values.out) {
    const report: CostReport = {
      command: `npm run cost -- ${process.argv
        .slice(2)
        .filter((a, i, all) => a !== '--out' && all[i - 1] !== '--out')
        .join(' ')}`.trim(),
      generatedAt: new Date(now).toISOString(),
      bench: path,
      inputs,
      ours,
      naive,
      viewStorePerRun: storeWork,
      collection,
      previousCollection: previous,
      collectionByTrackerLoads: [0, 0.05, 0.2, 1].map((loads) => ({
        loads,
        perMillionEvents: estimateCollectionCost({ ...collect.ours, trackerLoadsPerPageView: loads })
          .perMillionEvents,
      })),
      trackerLoadsWithin2: trackerLoadsWithin(2, collect.ours),
    };
    mkdirSync(dirname(values.out), { recursive: true });
    writeFileSync(`${values.out}.json`, JSON.stringify(report, null, 2) + '\n');
    writeFileSync(
      `${values.out}.md`,
      `\`${report.command}\` at ${report.generatedAt}:\n\n\`\`\`\n${out.join('\n')}\n\`\`\`\n`,
    );
    process.stderr.write(`wrote ${values.out}.json and ${values.out}.md\n`);
  }
}

runCli(main);
