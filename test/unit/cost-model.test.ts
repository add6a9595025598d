import { describe, expect, it } from 'vitest';
import {
  estimateCollectionCost,
  estimateMonthlyCost,
  estimateNaiveMonthlyCost,
  type CollectionInputs,
  type CostInputs,
} from '../../bench/cost-model.js';

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
  const collection = (overrides: Partial<CollectionInputs> = {}): CollectionInputs => ({
    pageViewsPerSecond: 100,
    eventsPerRequest: 1,
    requestBytes: 700,
    responseBytes: 300,
    trackerLoadsPerPageView: 1,
    trackerBytes: 900,
    lambdaMsPerRequest: 10,
    lambdaMemoryGb: 0.25,
    ...overrides,
  });

  it('charges CloudFront, API Gateway and Lambda, adding up to the total', () => {
    const estimate = estimateCollectionCost(collection());
    expect(Object.keys(estimate.byService).sort()).toEqual(['API Gateway', 'CloudFront', 'Lambda']);
    expect(estimate.total).toBeCloseTo(
      estimate.lines.reduce((sum, line) => sum + line.usd, 0),
      6,
    );
  });

  it('costs the same per million page views at any rate, and about $3 at these inputs', () => {
    const small = estimateCollectionCost(collection({ pageViewsPerSecond: 10 }));
    const large = estimateCollectionCost(collection({ pageViewsPerSecond: 10_000 }));
    expect(large.perMillionEvents).toBeCloseTo(small.perMillionEvents, 6);
    // 2 CloudFront requests ($2), 1 API request ($1), a Lambda request and 2.5 ms of 1 GB-s: about $3.3.
    expect(small.perMillionEvents).toBeGreaterThan(3);
    expect(small.perMillionEvents).toBeLessThan(3.6);
  });

  it('costs less when senders batch events into fewer requests', () => {
    const single = estimateCollectionCost(collection());
    const batched = estimateCollectionCost(collection({ eventsPerRequest: 20, trackerLoadsPerPageView: 0 }));
    expect(batched.total).toBeLessThan(single.total / 5);
  });
});
