import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { PageViewsResponse } from '../../shared/api-types.js';
import type { PageView } from '../../shared/event.js';
import { PageViewGenerator } from '../../shared/generator.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { DAY_MS, HOUR_MS, hourBucket, toIso } from '../../shared/time.js';
import { startLocalStack, type LocalStack } from '../../local/stack.js';
import { truthCounts } from '../support/ground-truth.js';
import { isolatedNames } from './support/stack.js';

describe('end to end: generator → Kinesis → speed + Firehose → batch → API over HTTP', () => {
  let stack: LocalStack;
  const now = Date.now();
  const from = hourBucket(now) - 3 * HOUR_MS;
  const events: PageView[] = [];

  beforeAll(async () => {
    stack = await startLocalStack({
      emulators: inject('emulators'),
      names: isolatedNames('e2e'),
      shards: 2,
      runBatchAtStart: false,
      batchIntervalMs: 3_600_000,
    });
    // Three hours up to a minute ago, with malformed records and producer re-sends mixed in.
    const count = 900;
    const generator = new PageViewGenerator({
      seed: 42,
      startMs: from,
      rate: count / ((now - 60_000 - from) / 1000),
      malformedFraction: 0.05,
      duplicateFraction: 0.02,
    });
    const records = [...generator.take(count)];
    events.push(...records.filter((r) => r.event).map((r) => r.event!));
    await putRecordsReliably(stack.clients.kinesis, stack.config.names.stream, records);
    await stack.esm.drain();
  });
  afterAll(async () => stack?.stop());

  async function pageViews(query: Record<string, string>): Promise<PageViewsResponse> {
    const response = await fetch(`${stack.apiUrl}/v1/pageviews?${new URLSearchParams(query).toString()}`);
    expect(response.status).toBe(200);
    return (await response.json()) as PageViewsResponse;
  }

  async function expectTruth(expectedHorizon: number | null) {
    const to = hourBucket(now) + HOUR_MS;
    const hourly = await pageViews({
      from: toIso(from),
      to: toIso(to),
      granularity: 'hour',
      by: 'browser',
      top: '100',
    });
    expect(hourly.horizon).toBe(expectedHorizon === null ? null : toIso(expectedHorizon));
    expect(hourly.buckets.map((b) => [b.start, b.count])).toEqual(
      truthCounts(events, 'total', 'hour', { fromMs: from, toMs: to }).map((r) => [
        toIso(r.bucketMs),
        r.count,
      ]),
    );
    expect(hourly.total).toBe(events.length);
    for (const value of hourly.breakdown!) {
      const truth = truthCounts(events, 'browser', 'hour', { fromMs: from, toMs: to }).filter(
        (r) => r.value === value.value,
      );
      expect(value.total).toBe(truth.reduce((sum, r) => sum + r.count, 0));
    }
    const dayFrom = Math.floor(from / DAY_MS) * DAY_MS;
    const daily = await pageViews({
      from: toIso(dayFrom),
      to: toIso(Math.floor(now / DAY_MS) * DAY_MS + DAY_MS),
      granularity: 'day',
    });
    expect(daily.total).toBe(events.length);
    return hourly;
  }

  it('answers from the speed layer alone before any batch run', async () => {
    const answer = await expectTruth(null);
    expect(answer.buckets.every((b) => b.source === 'speed')).toBe(true);
  });

  it('answers the same after a batch run moves H, now serving the hours before H from batch views', async () => {
    await stack.firehose.drain();
    await stack.scheduler.runNow();
    const status = (await (await fetch(`${stack.apiUrl}/v1/status`)).json()) as { horizon: string };
    const horizon = Date.parse(status.horizon);
    expect(horizon).toBeGreaterThan(from);
    const answer = await expectTruth(horizon);
    expect(
      answer.buckets.filter((b) => Date.parse(b.start) < horizon).every((b) => b.source === 'batch'),
    ).toBe(true);
    expect(
      answer.buckets.filter((b) => Date.parse(b.start) >= horizon).every((b) => b.source === 'speed'),
    ).toBe(true);
  });
});
