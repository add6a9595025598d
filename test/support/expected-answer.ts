import { expect } from 'vitest';
import type { PageViewsResponse } from '../../shared/api-types.js';
import { dimensionValue, type Dimension, type PageView } from '../../shared/event.js';
import { toIso, type Granularity } from '../../shared/time.js';
import { truthCounts } from './ground-truth.js';

/**
 * The judge of the merge property tests: an answer equals what the valid events say, bucket by bucket, with its
 * errors and visitors (exact here: few users), and its breakdown's top values and `other`.
 */
export function expectExactAnswer(
  body: PageViewsResponse,
  valid: readonly PageView[],
  scenario: { readonly granularity: Granularity; readonly by?: Dimension | undefined; readonly top: number },
  from: number,
  to: number,
): void {
  const truth = truthCounts(valid, 'total', scenario.granularity, { fromMs: from, toMs: to });
  const byBucket = new Map(truth.map((r) => [toIso(r.bucketMs), r.count]));
  expect(body.buckets.map((b) => [b.start, b.count])).toEqual(
    body.buckets.map((b) => [b.start, byBucket.get(b.start) ?? 0]),
  );
  expect(body.total).toBe(truth.reduce((sum, r) => sum + r.count, 0));
  // Errors are exact; visitors are unions (exact here: few users), whatever layers and buckets they span.
  const users = (list: PageView[]) => new Set(list.map((e) => e.userId)).size;
  const inRange = valid.filter((e) => e.created >= from && e.created < to);
  const errors = inRange.filter((e) => e.status >= 400).length;
  expect([body.visitors, body.errors, body.errorRate]).toEqual([
    users(inRange),
    errors,
    inRange.length ? errors / inRange.length : null,
  ]);
  for (const bucket of body.buckets) {
    const inBucket = inRange.filter(
      (e) => e.created >= Date.parse(bucket.start) && e.created < Date.parse(bucket.end),
    );
    const bucketErrors = inBucket.filter((e) => e.status >= 400).length;
    expect([bucket.visitors, bucket.errors, bucket.errorRate]).toEqual([
      users(inBucket),
      bucketErrors,
      inBucket.length ? bucketErrors / inBucket.length : null,
    ]);
  }
  if (scenario.by) {
    const perValue = truthCounts(valid, scenario.by, scenario.granularity, { fromMs: from, toMs: to });
    const starts = body.buckets.map((b) => Date.parse(b.start));
    const series = new Map<string, number[]>();
    for (const row of perValue) {
      const counts = series.get(row.value) ?? new Array<number>(starts.length).fill(0);
      counts[starts.indexOf(row.bucketMs)]! += row.count;
      series.set(row.value, counts);
    }
    const by = scenario.by;
    const metricsOf = (list: PageView[], total: number) => {
      const valueErrors = list.filter((e) => e.status >= 400).length;
      return { errors: valueErrors, errorRate: total ? valueErrors / total : null };
    };
    const ranked = [...series.entries()]
      .map(([value, counts]) => {
        const total = counts.reduce((a, b) => a + b, 0);
        const events = inRange.filter((e) => dimensionValue(e, by) === value);
        return { value, total, counts, visitors: users(events), ...metricsOf(events, total) };
      })
      .sort((a, b) => b.total - a.total || (a.value < b.value ? -1 : 1));
    const expected = ranked.slice(0, scenario.top);
    const rest = ranked.slice(scenario.top);
    if (rest.length > 0) {
      const other = starts.map((_, i) => rest.reduce((sum, r) => sum + r.counts[i]!, 0));
      const total = other.reduce((a, b) => a + b, 0);
      const events = inRange.filter((e) => rest.some((r) => r.value === dimensionValue(e, by)));
      expected.push({
        value: 'other',
        total,
        counts: other,
        ...metricsOf(events, total),
        visitors: null as never,
      });
    }
    expect(body.breakdown).toEqual(expected);
  }
}
