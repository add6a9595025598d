import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CountDimension } from '../../shared/counts.js';
import { DIMENSIONS, EVENT_LIMITS, type PageView } from '../../shared/event.js';
import { PageViewGenerator } from '../../traffic/generator.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { HOUR_MS, hourBucket, MINUTE_MS, toIso } from '../../shared/time.js';
import { startLocalStack, type LocalStack } from '../../local/stack.js';
import { splitResends, truthCounts } from '../support/ground-truth.js';
import { getPageViews, isolatedNames } from './support/stack.js';

/** Totals per value of a dimension over all buckets: what a breakdown's `total` must equal. */
function totalsByValue(events: readonly PageView[], dimension: CountDimension, fromMs: number, toMs: number) {
  const totals = new Map<string, number>();
  for (const row of truthCounts(events, dimension, 'hour', { fromMs, toMs }))
    totals.set(row.value, (totals.get(row.value) ?? 0) + row.count);
  return totals;
}

describe('hostile traffic through the whole local pipeline', () => {
  let stack: LocalStack;
  const now = Date.now();
  // The events end before the horizon the first batch run will publish, so that run covers all of them.
  const to = hourBucket(now - 10 * MINUTE_MS);
  const from = to - 3 * HOUR_MS;
  let events: PageView[] = [];
  let resends: PageView[] = [];

  beforeAll(async () => {
    stack = await startLocalStack({
      emulators: inject('emulators'),
      names: isolatedNames('hostile'),
      shards: 2,
      runBatchAtStart: false,
      batchIntervalMs: 3_600_000,
    });
    const count = 1200;
    const records = [
      ...new PageViewGenerator({
        seed: 14,
        startMs: from,
        rate: count / ((to - from) / 1000),
        hostileFraction: 0.4,
        malformedFraction: 0.03,
        duplicateFraction: 0.02,
      }).take(count),
    ];
    ({ events, resends } = splitResends(records));
    expect(events.every((e) => e.created >= from && e.created < to)).toBe(true);
    expect(resends.length).toBeGreaterThan(20);
    await putRecordsReliably(stack.clients.kinesis, stack.config.names.stream, records);
    await stack.esm.drain();
  });
  afterAll(async () => stack?.stop());

  const pageViews = (query: Record<string, string>) => getPageViews(stack.apiUrl, query);

  const breakdown = (by: CountDimension) =>
    pageViews({ from: toIso(from), to: toIso(to), granularity: 'hour', by, top: '100' });

  it('counts every hostile event in the speed layer without a write error, long values whole', async () => {
    const answer = await breakdown('url');
    expect(answer.horizon).toBeNull();
    // A re-send that lands in another batch is counted again until the batch layer covers its hour.
    const distinct = truthCounts(events, 'total', 'hour', { fromMs: from, toMs: to });
    const withResends = truthCounts([...events, ...resends], 'total', 'hour', { fromMs: from, toMs: to });
    answer.buckets.forEach((bucket, i) => {
      expect(bucket.count).toBeGreaterThanOrEqual(distinct[i]!.count);
      expect(bucket.count).toBeLessThanOrEqual(withResends[i]!.count);
    });
    const longest = answer.breakdown!.filter(
      (b) => Buffer.byteLength(b.value, 'utf8') === EVENT_LIMITS.maxUrlBytes,
    );
    expect(longest.length).toBeGreaterThanOrEqual(4);
    for (const value of longest) expect(events.some((e) => e.url === value.value)).toBe(true);
    expect(stack.stats().writeFailures).toBe(0);
    expect(stack.stats().writeRejected).toBe(0);
  });

  it('answers exactly from the batch views once H has moved past the hostile hours', async () => {
    await stack.firehose.drain();
    await stack.scheduler.runNow();
    expect(stack.stats().horizon).toBeGreaterThanOrEqual(to);
    for (const dimension of DIMENSIONS) {
      const answer = await breakdown(dimension);
      expect(answer.buckets.every((b) => b.source === 'batch')).toBe(true);
      expect(answer.buckets.map((b) => [b.start, b.count])).toEqual(
        truthCounts(events, 'total', 'hour', { fromMs: from, toMs: to }).map((r) => [
          toIso(r.bucketMs),
          r.count,
        ]),
      );
      const truth = totalsByValue(events, dimension, from, to);
      const ranked = [...truth.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
      const expected = ranked.slice(0, 100);
      if (ranked.length > 100) expected.push(['other', ranked.slice(100).reduce((sum, [, n]) => sum + n, 0)]);
      expect(
        answer.breakdown!.map((b) => [b.value, b.total]),
        dimension,
      ).toEqual(expected);
    }
    expect(stack.stats().writeFailures).toBe(0);
    expect(stack.stats().writeRejected).toBe(0);
  });
});
