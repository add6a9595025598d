import { describe, expect, it } from 'vitest';
import {
  collectionInputs,
  estimateCollectionCost,
  estimateMonthlyCost,
  estimateNaiveMonthlyCost,
  estimatePreviousCollectionCost,
  HTTPS_FLOOR_PER_MILLION,
  SECONDS_PER_MONTH,
  trackerLoadsWithin,
  type CollectionInputs,
  type CostInputs,
} from '../../bench/support/cost-model.js';

const inputs = (overrides: Partial<CostInputs> = {}): CostInputs => ({
  eventsPerSecond: 100,
  recordBytes: 122,
  parquetBytesPerEvent: 12,
  shards: 4,
  recordsPerInvocation: 25,
  speedWritesPerRecord: 0.5,
  naiveWritesPerRecord: 1,
  speedCpuMicrosPerRecord: 3,
  naiveCpuMicrosPerRecord: 4,
  dynamoWriteLatencyMs: 5,
  lambdaMemoryGb: 1,
  batchRunsPerMonth: 2920,
  batchHoursPerRun: 1,
  athenaQueriesPerRun: 1,
  scannedColumnShare: 0.85,
  apiQueriesPerSecond: 1,
  dynamoReadsPerQuery: 5,
  apiLambdaMsPerQuery: 10,
  retentionMonths: 12,
  urlsPerDay: 10_000,
  viewGetsPerQuery: 20,
  ...overrides,
});

describe('cost model', () => {
  it('charges the view store more as distinct urls per day grow, and far less than rewriting views', () => {
    const lines = (urlsPerDay: number) => estimateMonthlyCost(inputs({ eventsPerSecond: 1000, urlsPerDay }));
    const viewStore = (e: ReturnType<typeof lines>) =>
      e.lines.filter((l) => l.item.startsWith('view store')).reduce((sum, l) => sum + l.usd, 0);
    expect(viewStore(lines(1_000_000))).toBeGreaterThan(viewStore(lines(10_000)));
    const naive = estimateNaiveMonthlyCost(inputs({ eventsPerSecond: 1000, urlsPerDay: 1_000_000 }));
    const rewritten = naive.lines.find((l) => l.item.startsWith('batch view rows rewritten'))!;
    expect(rewritten.usd).toBeGreaterThan(10 * viewStore(lines(1_000_000)));
  });

  it('adds its line items up to the total, by service', () => {
    const estimate = estimateMonthlyCost(inputs());
    const sum = estimate.lines.reduce((total, line) => total + line.usd, 0);
    expect(estimate.total).toBeCloseTo(sum, 6);
    expect(Object.values(estimate.byService).reduce((a, b) => a + b, 0)).toBeCloseTo(sum, 6);
    expect(Object.keys(estimate.byService).sort()).toEqual([
      'API Gateway',
      'Athena',
      'CloudWatch',
      'DynamoDB',
      'Firehose',
      'Kinesis',
      'Lambda',
      'S3',
    ]);
  });

  it('charges DynamoDB in proportion to writes per record', () => {
    const few = estimateMonthlyCost(inputs({ speedWritesPerRecord: 0.1 })).byService.DynamoDB!;
    const many = estimateMonthlyCost(inputs({ speedWritesPerRecord: 1 })).byService.DynamoDB!;
    expect(many).toBeGreaterThan(5 * few);
  });

  it('costs the naive design more: a write per event and a full scan per run', () => {
    const ours = estimateMonthlyCost(inputs());
    const naive = estimateNaiveMonthlyCost(inputs());
    expect(naive.byService.DynamoDB!).toBeGreaterThan(ours.byService.DynamoDB!);
    expect(naive.byService.Athena!).toBeGreaterThan(ours.byService.Athena!);
    expect(naive.total).toBeGreaterThan(ours.total);
  });

  it('grows with traffic, while the cost per million events does not grow', () => {
    const small = estimateMonthlyCost(inputs({ eventsPerSecond: 100 }));
    const large = estimateMonthlyCost(inputs({ eventsPerSecond: 10_000 }));
    expect(large.total).toBeGreaterThan(small.total);
    expect(large.perMillionEvents).toBeLessThanOrEqual(small.perMillionEvents);
  });
});

describe('collection cost', () => {
  const inputs1000 = collectionInputs({
    pageViewsPerSecond: 1000,
    measuredLambdaMs: 3,
    trackerGzipBytes: 850,
  });
  const collection = (overrides: Partial<CollectionInputs> = {}): CollectionInputs => ({
    ...inputs1000.ours,
    ...overrides,
  });

  it('charges CloudFront, the WAF, Lambda and the two secrets, no API Gateway, adding up to the total', () => {
    const estimate = estimateCollectionCost(collection());
    expect(Object.keys(estimate.byService).sort()).toEqual([
      'CloudFront',
      'Lambda',
      'Secrets Manager',
      'WAF',
    ]);
    expect(estimate.total).toBeCloseTo(
      estimate.lines.reduce((sum, line) => sum + line.usd, 0),
      6,
    );
    for (const line of estimate.lines) expect(line.floorUsd).toBeLessThanOrEqual(line.usd);
  });

  it('costs at most $2.00 per million page views at 1,000/s, per-client limits included, above the $1.00 floor', () => {
    const ours = estimateCollectionCost(collection());
    expect(ours.perMillionEvents).toBeLessThanOrEqual(2);
    expect(ours.perMillionEvents).toBeGreaterThan(HTTPS_FLOOR_PER_MILLION);
    // The WAF's $0.60 per million and a Lambda invocation's $0.20 sit on top of CloudFront's request.
    expect(ours.floorTotal / (1000 * SECONDS_PER_MONTH * 1e-6)).toBeGreaterThan(1.8);
    const previous = estimatePreviousCollectionCost(inputs1000.previous);
    expect(previous.perMillionEvents).toBeGreaterThan(3);
    expect(previous.byService['API Gateway']).toBeGreaterThan(0);
  });

  it('grows by a CloudFront request and a WAF inspection per /pv.js load, and says how many loads fit in $2.00', () => {
    const at = (loads: number) =>
      estimateCollectionCost(collection({ trackerLoadsPerPageView: loads })).perMillionEvents;
    // $1.00 + $0.60, and the script's bytes out (about 1.3 KB at $0.085/GB).
    expect(at(1) - at(0)).toBeGreaterThan(1.6);
    expect(at(1) - at(0)).toBeLessThan(1.75);
    const fit = trackerLoadsWithin(2, collection());
    expect(at(fit)).toBeCloseTo(2, 6);
    expect(fit).toBeGreaterThan(0.05);
  });

  it('spreads its monthly fees over traffic, and costs less when senders batch events into fewer requests', () => {
    const small = estimateCollectionCost(collection({ pageViewsPerSecond: 1 }));
    const large = estimateCollectionCost(collection({ pageViewsPerSecond: 10_000 }));
    expect(small.perMillionEvents).toBeGreaterThan(large.perMillionEvents);
    const single = estimateCollectionCost(collection());
    const batched = estimateCollectionCost(collection({ eventsPerRequest: 20, trackerLoadsPerPageView: 0 }));
    expect(batched.total).toBeLessThan(single.total / 5);
  });
});
