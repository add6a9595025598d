/**
 * Monthly AWS bill of the pipeline at a steady event rate, from measured per-event figures and list prices.
 * Pure arithmetic: scripts/cost.ts measures the inputs and prints the result.
 */
import { RECONCILE_HOURS } from '../../shared/batch/catalog.js';

/** us-east-1 on-demand list prices (USD) as published on the AWS pricing pages; checked 2026-11. */
export const PRICES_US_EAST_1 = {
  region: 'us-east-1',
  kinesis: {
    /** On-demand stream, per stream-hour. */
    streamHour: 0.04,
    /** On-demand data in, per GB; each record is rounded up to a whole KB. */
    ingestPerGb: 0.08,
    /** On-demand shared-throughput reads, per GB (one charge per consumer). */
    retrievalPerGb: 0.04,
    recordRoundingBytes: 1024,
  },
  lambda: {
    /** arm64, per GB-second. */
    gbSecond: 0.0000133334,
    perMillionRequests: 0.2,
  },
  dynamodb: {
    /** On-demand, per million write / read request units. */
    perMillionWrites: 0.625,
    perMillionReads: 0.125,
    storageGbMonth: 0.25,
  },
  firehose: {
    /** Ingestion per GB, records rounded up to 5 KB. */
    ingestPerGb: 0.029,
    ingestRoundingBytes: 5 * 1024,
    formatConversionPerGb: 0.018,
    dynamicPartitioningPerGb: 0.02,
    perThousandObjects: 0.005,
  },
  s3: {
    storageGbMonth: 0.023,
    perThousandPuts: 0.005,
    perThousandGets: 0.0004,
    /** LIST requests are billed as PUT, COPY and POST are. */
    perThousandLists: 0.005,
  },
  cloudwatch: {
    /** GetMetricData, per 1,000 metrics requested. */
    perThousandMetricsRequested: 0.01,
  },
  athena: {
    perTbScanned: 5,
    /** Each query is billed for at least 10 MB. */
    minBytesPerQuery: 10 * 1024 * 1024,
  },
  apiGateway: {
    /** HTTP API, first 300 million requests a month. */
    perMillionRequests: 1.0,
  },
  cloudfront: {
    /** HTTPS requests, United States/Europe, per 10,000 (free tier not counted). */
    perTenThousandHttpsRequests: 0.01,
    /** Data transfer out to the internet, first 10 TB, per GB. */
    dataOutPerGb: 0.085,
    /** Data transfer from CloudFront to the origin (request bodies), per GB. */
    toOriginPerGb: 0.02,
  },
  waf: {
    /** Per web ACL and per rule, per month; requests the web ACL inspects, per million (AWS WAF pricing). */
    webAclMonth: 5,
    ruleMonth: 1,
    perMillionRequests: 0.6,
  },
  secretsManager: {
    secretMonth: 0.4,
    perTenThousandCalls: 0.05,
  },
} as const;

export type Prices = typeof PRICES_US_EAST_1;

export const SECONDS_PER_MONTH = 730 * 3600;
const GB = 1024 ** 3;
const TB = 1024 ** 4;

/** What the cost depends on; each field says where scripts/cost.ts gets it. */
export interface CostInputs {
  readonly eventsPerSecond: number;
  /** Mean JSON record size (measured from the generator). */
  readonly recordBytes: number;
  /** Mean Parquet bytes per event of the master dataset (measured with the local Parquet writer). */
  readonly parquetBytesPerEvent: number;
  /** Shards of the stream (on-demand starts at 4 and adds shards with traffic). */
  readonly shards: number;
  /** Speed Lambda: records per invocation at this rate (batching window 1 s per shard, batch size cap). */
  readonly recordsPerInvocation: number;
  /** DynamoDB writes per record, ours and naive (measured by aggregating generated batches of that size). */
  readonly speedWritesPerRecord: number;
  /**
   * Write units per record (an update costs a unit per KB of its item): what on-demand DynamoDB bills.
   * @default speedWritesPerRecord (1 KB items)
   */
  readonly speedWriteUnitsPerRecord?: number;
  readonly naiveWritesPerRecord: number;
  /** Speed Lambda compute: CPU µs per record (bench), plus wall time waiting on DynamoDB per write round. */
  readonly speedCpuMicrosPerRecord: number;
  readonly naiveCpuMicrosPerRecord: number;
  readonly dynamoWriteLatencyMs: number;
  readonly lambdaMemoryGb: number;
  /** Batch layer. */
  readonly batchRunsPerMonth: number;
  readonly batchHoursPerRun: number;
  readonly athenaQueriesPerRun: number;
  /** Share of a Parquet row's bytes the batch SQL reads (columns it needs). */
  readonly scannedColumnShare: number;
  /** Serving layer. */
  readonly apiQueriesPerSecond: number;
  readonly dynamoReadsPerQuery: number;
  readonly apiLambdaMsPerQuery: number;
  /** Months of raw data kept (S3 storage at the end of this month). */
  readonly retentionMonths: number;
  /** Distinct urls per day: the view store grows with it (lookup shards, ranked chunks, per-query reads). */
  readonly urlsPerDay: number;
  /** View-store S3 GETs per API query (bench: cold `by=url&top=10` over 24 h at the nearest cardinality). */
  readonly viewGetsPerQuery: number;
  /** Filtered API queries per second (docs/filters.md), besides `apiQueriesPerSecond`. @default 0 */
  readonly filteredQueriesPerSecond?: number;
  /** Store requests (cube GETs, manifest and rollup Queries) per filtered query (bench: cold `by=url&filter=country:DE` over 24 h). */
  readonly filteredRequestsPerQuery?: number;
  /** API Lambda ms per filtered query (bench: the same query's cold p50). */
  readonly filteredLambdaMsPerQuery?: number;
  /**
   * Sites the traffic and the urls are spread over, evenly (docs/sites.md): the view store keeps a day per site and
   * dimension, so its work per run is per site; the speed writes are measured at this spread. @default 1
   */
  readonly sites?: number;
}

/**
 * The view store's work for one batch run that adds an hour: it rebuilds the day of each dimension whose
 * rows changed, reading the day's lookup shards and writing those whose content changed.
 */
export function viewStoreWorkPerRun(inputs: Pick<CostInputs, 'eventsPerSecond' | 'urlsPerDay' | 'sites'>): {
  gets: number;
  puts: number;
  dynamoWrites: number;
  storedBytesPerDay: number;
} {
  const sites = inputs.sites ?? 1;
  if (sites > 1) {
    // Each site's days are its own: the work of one site at its share of the traffic and urls, once per site.
    const one = viewStoreWorkPerRun({
      eventsPerSecond: inputs.eventsPerSecond / sites,
      urlsPerDay: inputs.urlsPerDay / sites,
    });
    return {
      gets: one.gets * sites,
      puts: one.puts * sites,
      dynamoWrites: one.dynamoWrites * sites,
      storedBytesPerDay: one.storedBytesPerDay * sites,
    };
  }
  const eventsPerHour = inputs.eventsPerSecond * 3600;
  // Rows of a url-day: one per (url, hour) seen; at most the events, at most the urls, per hour.
  const rowsPerHour = Math.min(eventsPerHour, inputs.urlsPerDay);
  const dayRows = 24 * rowsPerHour;
  const shards = 2 ** Math.ceil(Math.log2(Math.max(1, dayRows / 1000)));
  // A new hour touches most shards of a day that is, on average, half built.
  const urlShards = Math.max(1, shards / 2);
  const rankChunks = 1 + Math.max(0, Math.ceil(Math.log(Math.max(1, inputs.urlsPerDay) / 256) / Math.log(4)));
  const small = 3 * 2; // country, browser, status: one shard and one chunk each
  return {
    gets: urlShards + small,
    puts: urlShards + rankChunks + small,
    // An hour's total and its day's total, and one manifest per dimension.
    dynamoWrites: 2 + 4,
    storedBytesPerDay: dayRows * 25,
  };
}

export interface CostLine {
  readonly service: string;
  readonly item: string;
  readonly usd: number;
}

export interface CostEstimate {
  readonly lines: readonly CostLine[];
  readonly byService: Readonly<Record<string, number>>;
  readonly total: number;
  readonly perMillionEvents: number;
}

function summarise(lines: CostLine[], events: number): CostEstimate {
  const byService: Record<string, number> = {};
  for (const line of lines) byService[line.service] = (byService[line.service] ?? 0) + line.usd;
  const total = lines.reduce((sum, line) => sum + line.usd, 0);
  return { lines, byService, total, perMillionEvents: events > 0 ? total / (events / 1e6) : 0 };
}

/** The design as built: aggregated idempotent speed writes, incremental Athena runs over the hours that received objects. */
export function estimateMonthlyCost(inputs: CostInputs, prices: Prices = PRICES_US_EAST_1): CostEstimate {
  return summarise(costLines(inputs, prices, false), inputs.eventsPerSecond * SECONDS_PER_MONTH);
}

/** The naive design: one DynamoDB update per event and counter, and a full-table Athena scan every run. */
export function estimateNaiveMonthlyCost(
  inputs: CostInputs,
  prices: Prices = PRICES_US_EAST_1,
): CostEstimate {
  return summarise(costLines(inputs, prices, true), inputs.eventsPerSecond * SECONDS_PER_MONTH);
}

function costLines(inputs: CostInputs, p: Prices, naive: boolean): CostLine[] {
  const events = inputs.eventsPerSecond * SECONDS_PER_MONTH;
  const roundUp = (bytes: number, unit: number) => Math.ceil(bytes / unit) * unit;
  const kinesisBilledGb = (events * roundUp(inputs.recordBytes, p.kinesis.recordRoundingBytes)) / GB;
  const rawGb = (events * inputs.recordBytes) / GB;
  const invocations = events / Math.max(1, inputs.recordsPerInvocation);
  const writesPerRecord = naive ? inputs.naiveWritesPerRecord : inputs.speedWritesPerRecord;
  const writeUnits =
    events * (naive ? writesPerRecord : (inputs.speedWriteUnitsPerRecord ?? writesPerRecord));
  // Aggregated writes go out 50 at a time; the naive handler awaits its writes one after another.
  const writeRounds = (inputs.recordsPerInvocation * writesPerRecord) / (naive ? 1 : 50);
  const waitSecondsPerInvocation = Math.max(1, writeRounds) * (inputs.dynamoWriteLatencyMs / 1000);
  const cpuMicros = naive ? inputs.naiveCpuMicrosPerRecord : inputs.speedCpuMicrosPerRecord;
  const speedSeconds = (events * cpuMicros) / 1e6 + invocations * waitSecondsPerInvocation;
  const parquetGb = (events * inputs.parquetBytesPerEvent) / GB;
  const eventsPerHour = inputs.eventsPerSecond * 3600;
  const scannedPerRun = naive
    ? // A full scan reads all data kept so far: on average half a month plus the retained months.
      eventsPerHour *
      730 *
      (inputs.retentionMonths - 0.5) *
      inputs.parquetBytesPerEvent *
      inputs.scannedColumnShare
    : eventsPerHour * inputs.batchHoursPerRun * inputs.parquetBytesPerEvent * inputs.scannedColumnShare;
  const bytesPerQuery = Math.max(p.athena.minBytesPerQuery, scannedPerRun / inputs.athenaQueriesPerRun);
  const athenaTb = (inputs.batchRunsPerMonth * inputs.athenaQueriesPerRun * bytesPerQuery) / TB;
  const apiQueries = inputs.apiQueriesPerSecond * SECONDS_PER_MONTH;
  const filteredQueries = (inputs.filteredQueriesPerSecond ?? 0) * SECONDS_PER_MONTH;
  // Runs that compute: about one per hour (when H passes an hour) plus the odd late hour.
  const computingRuns = 730 * inputs.batchHoursPerRun;
  const store = viewStoreWorkPerRun(inputs);
  // The previous design rewrote every view row of a 6 h trailing window + 1 h, in DynamoDB, every run.
  const naiveViewWrites =
    inputs.batchRunsPerMonth * 7 * (Math.min(inputs.eventsPerSecond * 3600, inputs.urlsPerDay) + 300);
  const firehoseObjects = 12 * 730 * Math.max(1, inputs.eventsPerSecond > 0 ? 2 : 0); // 5-min buffer, ~2 partitions open
  return [
    { service: 'Kinesis', item: 'on-demand stream hours', usd: 730 * p.kinesis.streamHour },
    { service: 'Kinesis', item: 'data in (1 KB rounding)', usd: kinesisBilledGb * p.kinesis.ingestPerGb },
    {
      service: 'Kinesis',
      item: 'reads by 2 consumers (speed, Firehose)',
      usd: 2 * kinesisBilledGb * p.kinesis.retrievalPerGb,
    },
    { service: 'Lambda', item: 'speed invocations', usd: (invocations / 1e6) * p.lambda.perMillionRequests },
    {
      service: 'Lambda',
      item: 'speed compute',
      usd: speedSeconds * inputs.lambdaMemoryGb * p.lambda.gbSecond,
    },
    {
      service: 'Lambda',
      item: 'Firehose transform (1 MB batches)',
      usd:
        ((rawGb * 1024) / 1e6) * p.lambda.perMillionRequests +
        ((events * 5) / 1e6) * inputs.lambdaMemoryGb * p.lambda.gbSecond,
    },
    {
      service: 'Lambda',
      item: 'batch + API invocations',
      usd:
        ((inputs.batchRunsPerMonth + apiQueries) / 1e6) * p.lambda.perMillionRequests +
        ((apiQueries * inputs.apiLambdaMsPerQuery) / 1000) * inputs.lambdaMemoryGb * p.lambda.gbSecond,
    },
    {
      service: 'DynamoDB',
      item: `speed writes (${writesPerRecord.toPrecision(3)}/record, ${(writeUnits / Math.max(1, events)).toPrecision(3)} units)`,
      usd: (writeUnits / 1e6) * p.dynamodb.perMillionWrites,
    },
    {
      service: 'DynamoDB',
      item: 'API reads',
      usd: ((apiQueries * inputs.dynamoReadsPerQuery) / 1e6) * p.dynamodb.perMillionReads,
    },
    {
      service: 'Firehose',
      item: 'ingestion (5 KB rounding)',
      usd:
        ((events * roundUp(inputs.recordBytes, p.firehose.ingestRoundingBytes)) / GB) *
        p.firehose.ingestPerGb,
    },
    { service: 'Firehose', item: 'Parquet conversion', usd: rawGb * p.firehose.formatConversionPerGb },
    {
      service: 'Firehose',
      item: 'dynamic partitioning',
      usd:
        rawGb * p.firehose.dynamicPartitioningPerGb +
        (firehoseObjects / 1000) * p.firehose.perThousandObjects,
    },
    {
      service: 'S3',
      item: `Parquet storage (${inputs.retentionMonths} months kept)`,
      usd: parquetGb * inputs.retentionMonths * p.s3.storageGbMonth,
    },
    {
      service: 'S3',
      item: 'PUT/GET requests',
      usd:
        (firehoseObjects / 1000) * p.s3.perThousandPuts +
        ((inputs.batchRunsPerMonth * inputs.batchHoursPerRun * 4) / 1000) * p.s3.perThousandGets,
    },
    {
      service: 'Athena',
      item: naive
        ? 'full-table scan every run'
        : `${inputs.batchHoursPerRun} h (the hours that received objects) every run`,
      usd: athenaTb * p.athena.perTbScanned,
    },
    {
      service: 'API Gateway',
      item: 'HTTP API requests',
      usd: ((apiQueries + filteredQueries) / 1e6) * p.apiGateway.perMillionRequests,
    },
    ...(filteredQueries > 0
      ? [
          {
            service: 'Lambda',
            item: `filtered queries (${inputs.filteredQueriesPerSecond}/s, ${inputs.filteredLambdaMsPerQuery ?? 0} ms each)`,
            usd:
              (filteredQueries / 1e6) * p.lambda.perMillionRequests +
              ((filteredQueries * (inputs.filteredLambdaMsPerQuery ?? 0)) / 1000) *
                inputs.lambdaMemoryGb *
                p.lambda.gbSecond,
          },
          {
            service: 'S3',
            item: `filter cube GETs (${inputs.filteredRequestsPerQuery ?? 0} requests/filtered query, an upper bound: all counted as GETs)`,
            usd: ((filteredQueries * (inputs.filteredRequestsPerQuery ?? 0)) / 1000) * p.s3.perThousandGets,
          },
        ]
      : []),
    ...(naive
      ? [
          {
            service: 'DynamoDB',
            item: 'batch view rows rewritten (6 h window every run)',
            usd: (naiveViewWrites / 1e6) * p.dynamodb.perMillionWrites,
          },
        ]
      : [
          {
            service: 'DynamoDB',
            item: 'batch totals and view manifests written',
            usd: ((computingRuns * store.dynamoWrites) / 1e6) * p.dynamodb.perMillionWrites,
          },
          {
            service: 'S3',
            item: `view store (${inputs.urlsPerDay.toLocaleString('en-US')} urls/day): run PUTs/GETs, storage`,
            usd:
              ((computingRuns * store.puts) / 1000) * p.s3.perThousandPuts +
              ((computingRuns * store.gets) / 1000) * p.s3.perThousandGets +
              ((store.storedBytesPerDay * 30 * inputs.retentionMonths) / GB) * p.s3.storageGbMonth,
          },
          {
            // docs/faults.md: one LIST per reconciled partition every run, whatever landed.
            service: 'S3',
            item: `catalog reconciliation: LIST of ${RECONCILE_HOURS + 1} raw partitions every run`,
            usd: ((inputs.batchRunsPerMonth * (RECONCILE_HOURS + 1)) / 1000) * p.s3.perThousandLists,
          },
          {
            // The landed set: one more UpdateItem per object; reconciliation reads each hour's set (eventually
            // consistent: half a read unit per 4 KB).
            service: 'DynamoDB',
            item: "catalog: landed sets (an update per object) and the reconciliation's reads",
            usd:
              (firehoseObjects / 1e6) * p.dynamodb.perMillionWrites +
              ((inputs.batchRunsPerMonth * (RECONCILE_HOURS + 1) * 0.5) / 1e6) * p.dynamodb.perMillionReads,
          },
          {
            service: 'CloudWatch',
            item: 'delivery watermark: GetMetricData of 3 Firehose metrics every run',
            usd: ((inputs.batchRunsPerMonth * 3) / 1000) * p.cloudwatch.perThousandMetricsRequested,
          },
          {
            service: 'S3',
            item: `view store GETs by the API (${inputs.viewGetsPerQuery}/query)`,
            usd: ((apiQueries * inputs.viewGetsPerQuery) / 1000) * p.s3.perThousandGets,
          },
        ]),
  ];
}

/** Collection from browsers: what each page view costs on the way in, before the stream. */
export interface CollectionInputs {
  readonly pageViewsPerSecond: number;
  /** Page views per collector request: 1 for the tracker, more for a batching sender. */
  readonly eventsPerRequest: number;
  /** Bytes CloudFront passes to the origin per request (body and forwarded headers). */
  readonly requestBytes: number;
  /** Bytes of a collector response as the viewer receives it (headers and JSON). */
  readonly responseBytes: number;
  /**
   * Loads of the tracker script from CloudFront per page view. This design: its URL is immutable and browsers keep
   * it a year, so it is loaded once per browser and site while the cache entry lives (an assumption, printed).
   * The previous design: up to every page view (an hour's caching; 1 is its upper bound).
   */
  readonly trackerLoadsPerPageView: number;
  /** Bytes of one tracker response (gzipped script and headers). */
  readonly trackerBytes: number;
  /** Collector Lambda duration per request. */
  readonly lambdaMsPerRequest: number;
  readonly lambdaMemoryGb: number;
}

/** What collection cannot cost less than on AWS over HTTPS: CloudFront's price of the request itself. */
export const HTTPS_FLOOR_PER_MILLION = PRICES_US_EAST_1.cloudfront.perTenThousandHttpsRequests * 100;

/** A collection line and the least it could cost for the same page views (docs/collector.md, "Cost"). */
export interface CollectionLine extends CostLine {
  readonly floorUsd: number;
}

export interface CollectionEstimate extends CostEstimate {
  readonly lines: readonly CollectionLine[];
  readonly floorTotal: number;
}

/**
 * This design: CloudFront with a WAF rate rule per IP in front of the collector's function URL. Floors per line:
 * the beacon's CloudFront request (the HTTPS floor), the WAF's per-request price (the price of per-client limits),
 * one Lambda invocation per request with no compute, no /pv.js loads (a site that inlines or hosts the script),
 * and the bytes as they are.
 */
export function estimateCollectionCost(
  inputs: CollectionInputs,
  p: Prices = PRICES_US_EAST_1,
): CollectionEstimate {
  const { pageViews, requests, trackerLoads, https, responses, scriptBytes, toOrigin, invocations, lambda } =
    collectionTraffic(inputs, p);
  const waf = (n: number) => (n / 1e6) * p.waf.perMillionRequests;
  // Containers: the requests in flight at once, each recycled every couple of hours; a cold start reads the
  // visitor key and the origin secret's three stages.
  const containers = Math.max(1, (inputs.pageViewsPerSecond * inputs.lambdaMsPerRequest) / 1000);
  const secretReads = containers * 12 * 30 * 4;
  const lines: CollectionLine[] = [
    {
      service: 'CloudFront',
      item: 'HTTPS requests: page views',
      usd: https(requests),
      floorUsd: https(requests),
    },
    {
      service: 'CloudFront',
      item: `HTTPS requests: /pv.js loads (${inputs.trackerLoadsPerPageView} per page view)`,
      usd: https(trackerLoads),
      floorUsd: 0,
    },
    {
      service: 'CloudFront',
      item: 'data out (responses, /pv.js)',
      usd: responses + scriptBytes,
      floorUsd: responses,
    },
    { service: 'CloudFront', item: 'data to the origin (request bodies)', usd: toOrigin, floorUsd: toOrigin },
    {
      service: 'WAF',
      item: 'requests inspected (rate rule per IP)',
      usd: waf(requests + trackerLoads),
      floorUsd: waf(requests),
    },
    { service: 'WAF', item: 'web ACL and its rule', usd: p.waf.webAclMonth + p.waf.ruleMonth, floorUsd: 0 },
    { service: 'Lambda', item: 'collector invocations and compute', usd: lambda, floorUsd: invocations },
    {
      service: 'Secrets Manager',
      item: 'visitor key, origin secret, reads at cold starts',
      usd: 2 * p.secretsManager.secretMonth + (secretReads / 1e4) * p.secretsManager.perTenThousandCalls,
      floorUsd: 0,
    },
  ];
  const estimate = summarise(lines, pageViews);
  return {
    ...estimate,
    lines,
    floorTotal: lines.reduce((sum, line) => sum + line.floorUsd, 0),
  };
}

/**
 * The previous design, for comparison: CloudFront (no WAF) in front of an HTTP API of the collector's own, which
 * added $1 per million requests for a global throttle, and /pv.js cached for an hour.
 */
export function estimatePreviousCollectionCost(
  inputs: CollectionInputs,
  p: Prices = PRICES_US_EAST_1,
): CostEstimate {
  const { pageViews, requests, trackerLoads, https, responses, scriptBytes, toOrigin, lambda } =
    collectionTraffic(inputs, p);
  const lines: CostLine[] = [
    {
      service: 'CloudFront',
      item: 'HTTPS requests (collector + /pv.js)',
      usd: https(requests + trackerLoads),
    },
    { service: 'CloudFront', item: 'data out (responses, /pv.js)', usd: responses + scriptBytes },
    { service: 'CloudFront', item: 'data to the origin (request bodies)', usd: toOrigin },
    {
      service: 'API Gateway',
      item: 'collector HTTP API requests',
      usd: (requests / 1e6) * p.apiGateway.perMillionRequests,
    },
    { service: 'Lambda', item: 'collector invocations and compute', usd: lambda },
  ];
  return summarise(lines, pageViews);
}

/** The traffic of collection in a month and what its parts cost, whichever design carries it. */
function collectionTraffic(inputs: CollectionInputs, p: Prices) {
  const pageViews = inputs.pageViewsPerSecond * SECONDS_PER_MONTH;
  const requests = pageViews / Math.max(1, inputs.eventsPerRequest);
  const trackerLoads = pageViews * inputs.trackerLoadsPerPageView;
  const dataOut = (bytes: number) => (bytes / GB) * p.cloudfront.dataOutPerGb;
  const invocations = (requests / 1e6) * p.lambda.perMillionRequests;
  return {
    pageViews,
    requests,
    trackerLoads,
    https: (n: number) => (n / 1e4) * p.cloudfront.perTenThousandHttpsRequests,
    responses: dataOut(requests * inputs.responseBytes),
    scriptBytes: dataOut(trackerLoads * inputs.trackerBytes),
    toOrigin: ((requests * inputs.requestBytes) / GB) * p.cloudfront.toOriginPerGb,
    invocations,
    lambda:
      invocations +
      ((requests * inputs.lambdaMsPerRequest) / 1000) * inputs.lambdaMemoryGb * p.lambda.gbSecond,
  };
}

/** The most /pv.js loads per page view that keep collection within `targetPerMillion`, all else as given. */
export function trackerLoadsWithin(
  targetPerMillion: number,
  inputs: CollectionInputs,
  p: Prices = PRICES_US_EAST_1,
): number {
  const at = (loads: number) =>
    estimateCollectionCost({ ...inputs, trackerLoadsPerPageView: loads }, p).perMillionEvents;
  const [base, slope] = [at(0), at(1) - at(0)];
  return Math.max(0, (targetPerMillion - base) / slope);
}

/**
 * The assumptions of the collection estimate, in one place (scripts/cost.ts prints them, bench/collect.ts reports
 * with them). Bytes: a tracker request carries ~150 B of JSON and its forwarded headers; a response, its JSON,
 * CORS, HSTS and nosniff headers and CloudFront's own. /pv.js: one load per 20 page views by default, i.e. a
 * browser views 20 pages of a site while it keeps the immutable script (Yahoo measured ~20% of page views with
 * an empty cache in 2007, for resources cached far shorter: `--tracker-loads-per-page-view 0.2` shows that case).
 * Lambda: the measured handler time, but at least 10 ms, a PutRecords round trip on AWS.
 */
export const COLLECTION_ASSUMPTIONS = {
  requestBytes: 700,
  responseBytes: 500,
  trackerLoadsPerPageView: 0.05,
  trackerHeaderBytes: 500,
  lambdaMemoryGb: 0.25,
  minLambdaMsPerRequest: 10,
  /** The previous design's tracker loads: every page view at most (an hour's caching). */
  previousTrackerLoadsPerPageView: 1,
  /** The previous design's response headers were fewer (no HSTS, nosniff): what its estimate assumed. */
  previousResponseBytes: 300,
  previousTrackerHeaderBytes: 300,
} as const;

export function collectionInputs(options: {
  readonly pageViewsPerSecond: number;
  /** Collector handler time per single-event request, measured (bench). */
  readonly measuredLambdaMs: number;
  readonly trackerGzipBytes: number;
  readonly trackerLoadsPerPageView?: number;
}): { readonly ours: CollectionInputs; readonly previous: CollectionInputs } {
  const a = COLLECTION_ASSUMPTIONS;
  const common = {
    pageViewsPerSecond: options.pageViewsPerSecond,
    eventsPerRequest: 1,
    requestBytes: a.requestBytes,
    lambdaMemoryGb: a.lambdaMemoryGb,
  };
  return {
    ours: {
      ...common,
      responseBytes: a.responseBytes,
      trackerLoadsPerPageView: options.trackerLoadsPerPageView ?? a.trackerLoadsPerPageView,
      trackerBytes: options.trackerGzipBytes + a.trackerHeaderBytes,
      lambdaMsPerRequest: Math.max(a.minLambdaMsPerRequest, options.measuredLambdaMs),
    },
    // As the previous estimate had it (the $3.32 of issue 24): the measured handler time as it was.
    previous: {
      ...common,
      responseBytes: a.previousResponseBytes,
      trackerLoadsPerPageView: a.previousTrackerLoadsPerPageView,
      trackerBytes: options.trackerGzipBytes + a.previousTrackerHeaderBytes,
      lambdaMsPerRequest: options.measuredLambdaMs,
    },
  };
}
