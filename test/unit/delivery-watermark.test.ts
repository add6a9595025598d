import { describe, expect, it } from 'vitest';
import type {
  CloudWatchClient,
  GetMetricDataCommand,
  GetMetricDataCommandInput,
} from '@aws-sdk/client-cloudwatch';
import {
  cloudWatchDeliveryMetrics,
  deliveryWatermark,
  type DeliveryReading,
} from '../../shared/batch/delivery.js';
import { candidateHorizon, clockHorizon } from '../../shared/batch/run.js';
import { DEFAULT_SETTINGS } from '../../shared/resources.js';
import { HOUR_MS, MINUTE_MS } from '../../shared/time.js';

const T = Date.UTC(2026, 10, 25, 14, 0);
const at = (minutes: number, figures: Omit<DeliveryReading, 'atMs'>): DeliveryReading => ({
  atMs: T + minutes * MINUTE_MS,
  ...figures,
});

describe('the delivery watermark', () => {
  it('is the newest period less the largest freshness and the largest lag behind the stream of the window', () => {
    const readings = [
      at(0, { dataFreshnessMs: 400_000, millisBehindLatestMs: 1_000, recordsRead: 50 }),
      at(1, { dataFreshnessMs: 90_000, millisBehindLatestMs: 20_000, recordsRead: 50 }),
      at(2, { dataFreshnessMs: 60_000, millisBehindLatestMs: 0, recordsRead: 50 }),
    ];
    expect(deliveryWatermark(readings)).toBe(T + 2 * MINUTE_MS - 400_000 - 20_000);
  });

  it('counts a period without freshness as idle when Firehose read nothing in it', () => {
    expect(deliveryWatermark([at(0, { millisBehindLatestMs: 0, recordsRead: 0 })])).toBe(T);
    expect(deliveryWatermark([at(0, { millisBehindLatestMs: 0 })])).toBe(T);
  });

  it('proves nothing when Firehose read records but reports no delivery (blocked), or reports no reads at all', () => {
    expect(deliveryWatermark([at(0, { millisBehindLatestMs: 0, recordsRead: 12 })])).toBeUndefined();
    expect(deliveryWatermark([at(0, { dataFreshnessMs: 1_000, recordsRead: 12 })])).toBeUndefined();
    expect(deliveryWatermark([])).toBeUndefined();
  });
});

describe('the candidate horizon', () => {
  const now = T + 30 * MINUTE_MS;
  it('is what the clock allows when everything has landed', () => {
    expect(candidateHorizon(now, DEFAULT_SETTINGS, Infinity)).toBe(clockHorizon(now, DEFAULT_SETTINGS));
    expect(clockHorizon(now, DEFAULT_SETTINGS)).toBe(T);
  });

  it('passes an hour only once records that reached the stream up to 5 minutes after it have landed', () => {
    expect(candidateHorizon(now, DEFAULT_SETTINGS, T + 4 * MINUTE_MS)).toBe(T - HOUR_MS);
    expect(candidateHorizon(now, DEFAULT_SETTINGS, T + 5 * MINUTE_MS)).toBe(T);
    // Never ahead of the clock, however far the watermark.
    expect(candidateHorizon(now, DEFAULT_SETTINGS, now + HOUR_MS)).toBe(T);
    // Nothing proven (Firehose blocked, or silent): no hour.
    expect(candidateHorizon(now, DEFAULT_SETTINGS, undefined)).toBe(-Infinity);
  });
});

describe("Firehose's delivery metrics from CloudWatch", () => {
  it('asks GetMetricData for the three metrics of the delivery stream and reads seconds of freshness as ms', async () => {
    const sent: GetMetricDataCommandInput[] = [];
    const p = (minutes: number) => new Date(T + minutes * MINUTE_MS);
    const cloudwatch = {
      send: async (command: GetMetricDataCommand) => {
        sent.push(command.input);
        return {
          MetricDataResults: [
            { Id: 'freshness', Timestamps: [p(2), p(1)], Values: [95, 310] },
            { Id: 'behind', Timestamps: [p(2), p(1), p(0)], Values: [0, 4_000, 0] },
            { Id: 'read', Timestamps: [p(2), p(1), p(0)], Values: [120, 80, 0] },
          ],
        };
      },
    } as unknown as CloudWatchClient;
    const metrics = cloudWatchDeliveryMetrics({ cloudwatch, deliveryStreamName: 'pv-delivery' });
    const readings = await metrics.readings(T + 3 * MINUTE_MS);
    expect(readings).toEqual([
      { atMs: T, millisBehindLatestMs: 0, recordsRead: 0 },
      { atMs: T + MINUTE_MS, dataFreshnessMs: 310_000, millisBehindLatestMs: 4_000, recordsRead: 80 },
      { atMs: T + 2 * MINUTE_MS, dataFreshnessMs: 95_000, millisBehindLatestMs: 0, recordsRead: 120 },
    ]);
    expect(deliveryWatermark(readings)).toBe(T + 2 * MINUTE_MS - 310_000 - 4_000);
    const queries = sent[0]!.MetricDataQueries!.map((q) => ({
      metric: q.MetricStat!.Metric!.MetricName,
      namespace: q.MetricStat!.Metric!.Namespace,
      dimensions: q.MetricStat!.Metric!.Dimensions,
      stat: q.MetricStat!.Stat,
    }));
    const dimensions = [{ Name: 'DeliveryStreamName', Value: 'pv-delivery' }];
    expect(queries).toEqual([
      { metric: 'DeliveryToS3.DataFreshness', namespace: 'AWS/Firehose', dimensions, stat: 'Maximum' },
      { metric: 'KinesisMillisBehindLatest', namespace: 'AWS/Firehose', dimensions, stat: 'Maximum' },
      { metric: 'DataReadFromKinesisStream.Records', namespace: 'AWS/Firehose', dimensions, stat: 'Sum' },
    ]);
    expect(sent[0]!.EndTime!.getTime() - sent[0]!.StartTime!.getTime()).toBe(20 * MINUTE_MS);
  });
});
