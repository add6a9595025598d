import type { KinesisStreamRecord } from 'aws-lambda';
import { KinesisRecordBuilder } from '../../local/kinesis-records.js';
import { PageViewGenerator } from '../../traffic/generator.js';

/** The Lambda batch sizes the speed figures are measured at. */
export const LAMBDA_BATCHES = [100, 1000] as const;

/** One shard's worth of traffic: 1,000 records/s, the per-shard write limit. */
export function shardTraffic(count: number, urlCount?: number, shardId?: string): KinesisStreamRecord[] {
  const now = Date.now();
  const generator = new PageViewGenerator({
    seed: 7,
    startMs: now - 10 * 60_000,
    rate: 1000,
    ...(urlCount ? { urlCount } : {}),
  });
  const shard = new KinesisRecordBuilder(shardId);
  return [...generator.take(count)].map((r) => shard.record(r.data, now));
}
