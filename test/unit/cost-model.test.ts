import { describe, expect, it } from 'vitest';
import { estimateMonthlyCost, estimateNaiveMonthlyCost, type CostInputs } from '../../bench/cost-model.js';

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
  batchHoursPerRun: 7,
  athenaQueriesPerRun: 1,
  scannedColumnShare: 0.85,
  apiQueriesPerSecond: 1,
  dynamoReadsPerQuery: 5,
  apiLambdaMsPerQuery: 10,
  retentionMonths: 12,
  ...overrides,
});

describe('cost model', () => {
  it('adds its line items up to the total, by service', () => {
    const estimate = estimateMonthlyCost(inputs());
    const sum = estimate.lines.reduce((total, line) => total + line.usd, 0);
    expect(estimate.total).toBeCloseTo(sum, 6);
    expect(Object.values(estimate.byService).reduce((a, b) => a + b, 0)).toBeCloseTo(sum, 6);
    expect(Object.keys(estimate.byService).sort()).toEqual([
      'API Gateway',
      'Athena',
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
