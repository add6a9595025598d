import { GetMetricDataCommand, type CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { MINUTE_MS } from '../time.js';

/**
 * The delivery watermark: an instant W such that every record that reached the stream before W has landed in
 * `raw/`. H may pass an hour only once W has (shared/batch/run.ts, docs/faults.md). W comes from what Firehose
 * itself reports about its delivery, read the same way on AWS (its CloudWatch metrics) and locally (the
 * Firehose stand-in reports the same figures):
 *
 * - `DeliveryToS3.DataFreshness`: "the age (from getting into Firehose to now) of the oldest record in Firehose.
 *   Any record older than this age has been delivered to the S3 bucket."
 * - `KinesisMillisBehindLatest`: "the number of milliseconds that the last read record is behind the newest
 *   record in the Kinesis data stream": records Firehose has not read yet are younger than that.
 * - `DataReadFromKinesisStream.Records`: records read in the period, to tell an idle stream from a blocked one:
 *   "if the data-freshness metric isn't being emitted, … there is no active delivery …: data delivery is
 *   completely blocked or there's no incoming data."
 * (Amazon Data Firehose developer guide: "Monitoring with CloudWatch metrics", and the troubleshooting page
 * "Data Freshness Metric Increasing or Not Emitted".)
 */

/** What Firehose reported for one period (AWS: one CloudWatch datapoint per metric; locally: one reading). */
export interface DeliveryReading {
  /** Start of the period the figures were measured in. */
  readonly atMs: number;
  /** Age of the oldest record not yet delivered, at most (absent: the metric was not emitted). */
  readonly dataFreshnessMs?: number;
  /** How far the last record read was behind the stream's newest one, at most (absent: not emitted). */
  readonly millisBehindLatestMs?: number;
  /** Records read from the stream in the period (absent: not emitted). */
  readonly recordsRead?: number;
}

/** A source of delivery readings: the recent periods, oldest first. */
export interface DeliveryMetrics {
  readings(nowMs: number): Promise<readonly DeliveryReading[]>;
}

/**
 * The watermark the readings prove, or undefined when they prove nothing (then H must not move).
 *
 * At a period starting at t, a record that entered Firehose before t − freshness had been delivered, and a
 * record that reached the stream before (entered − behind) had entered Firehose; taking the largest figures of
 * the window makes both hold for every period in it. So W = t_newest − max freshness − max behind. A period
 * without freshness is idle (W unaffected) if Firehose read nothing in it, and blocked (no W) if it did.
 * Without any `KinesisMillisBehindLatest`, Firehose may not be reading at all: no W.
 */
export function deliveryWatermark(readings: readonly DeliveryReading[]): number | undefined {
  const reading = readings.filter((r) => r.millisBehindLatestMs !== undefined);
  if (reading.length === 0) return undefined;
  let newest = -Infinity;
  let freshness = 0;
  let behind = 0;
  for (const r of readings) {
    if (r.dataFreshnessMs === undefined && (r.recordsRead ?? 0) > 0) return undefined;
    freshness = Math.max(freshness, r.dataFreshnessMs ?? 0);
    behind = Math.max(behind, r.millisBehindLatestMs ?? 0);
  }
  for (const r of reading) newest = Math.max(newest, r.atMs);
  return newest - freshness - behind;
}

export interface CloudWatchDeliveryOptions {
  readonly cloudwatch: CloudWatchClient;
  readonly deliveryStreamName: string;
  /** How far back to read. Firehose pushes its metrics every five minutes. @default 20 minutes */
  readonly lookbackMs?: number;
}

const PERIOD_SECONDS = 60;

/**
 * Firehose's own delivery metrics from CloudWatch (one GetMetricData call; `cloudwatch:GetMetricData` takes
 * no resource ARN, per the CloudWatch permissions reference).
 */
export function cloudWatchDeliveryMetrics(options: CloudWatchDeliveryOptions): DeliveryMetrics {
  const queries = [
    { id: 'freshness', metric: 'DeliveryToS3.DataFreshness', stat: 'Maximum', scale: 1000 },
    { id: 'behind', metric: 'KinesisMillisBehindLatest', stat: 'Maximum', scale: 1 },
    { id: 'read', metric: 'DataReadFromKinesisStream.Records', stat: 'Sum', scale: 1 },
  ] as const;
  return {
    async readings(nowMs) {
      const response = await options.cloudwatch.send(
        new GetMetricDataCommand({
          StartTime: new Date(nowMs - (options.lookbackMs ?? 20 * MINUTE_MS)),
          EndTime: new Date(nowMs),
          MetricDataQueries: queries.map((q) => ({
            Id: q.id,
            MetricStat: {
              Metric: {
                Namespace: 'AWS/Firehose',
                MetricName: q.metric,
                Dimensions: [{ Name: 'DeliveryStreamName', Value: options.deliveryStreamName }],
              },
              Period: PERIOD_SECONDS,
              Stat: q.stat,
            },
          })),
        }),
      );
      const byPeriod = new Map<number, { atMs: number; [field: string]: number }>();
      for (const result of response.MetricDataResults ?? []) {
        const query = queries.find((q) => q.id === result.Id);
        if (!query) continue;
        const field = { freshness: 'dataFreshnessMs', behind: 'millisBehindLatestMs', read: 'recordsRead' }[
          query.id
        ];
        (result.Timestamps ?? []).forEach((timestamp, i) => {
          const atMs = timestamp.getTime();
          const period = byPeriod.get(atMs) ?? { atMs };
          period[field] = (result.Values?.[i] ?? 0) * query.scale;
          byPeriod.set(atMs, period);
        });
      }
      return [...byPeriod.values()].sort((a, b) => a.atMs - b.atMs) as DeliveryReading[];
    },
  };
}
