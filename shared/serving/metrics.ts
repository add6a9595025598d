import type { BucketSource, PageViewsResponse } from '../api-types.js';
import type { HorizonState } from '../counts.js';
import { formatFilter } from '../filters/grammar.js';
import { estimate, unionAll, type VisitorSketch } from '../sketch/index.js';
import { GRANULARITY_MS, toIso } from '../time.js';
import type { Metric, PageViewsQuery } from './params.js';

/** The query as an answer echoes it: what was asked, with defaults left out (filters in canonical form). */
export function echoOf(query: PageViewsQuery): PageViewsResponse['query'] {
  const { by, top, filters } = query;
  return {
    site: query.site,
    from: toIso(query.fromMs),
    to: toIso(query.toMs),
    granularity: query.granularity,
    ...(by ? { by } : {}),
    ...(top ? { top } : {}),
    ...(query.metrics.length > 1 ? { metrics: query.metrics } : {}),
    ...(by && query.order !== 'pageviews' ? { order: query.order } : {}),
    ...(filters.length > 0 ? { filters: filters.map(formatFilter) } : {}),
  };
}

/**
 * Visitors from a sketch: its estimate, which above the sparse limit may exceed the page views by the
 * sketch's error; every visitor has a page view, so the page views bound it.
 */
export const visitorCount = (sketch: VisitorSketch, pageViews: number): number =>
  Math.min(estimate(sketch), pageViews);

/** The fields of the asked metrics besides page views and visitors. */
export function metricFields(metrics: readonly Metric[], views: number, errors: number) {
  return {
    ...(metrics.includes('errors') ? { errors } : {}),
    ...(metrics.includes('error_rate') ? { errorRate: views > 0 ? errors / views : null } : {}),
  };
}

/**
 * An answer without its breakdown: the echo, H, the range's totals and one entry per bucket with its source (a
 * bucket wholly before H is `batch`, wholly after `speed`, across it `both`; minutes are always `speed`).
 * `bucketVisitors` is each bucket's sketch when the query counts visitors; the range's is their union.
 */
export function bucketedAnswer(
  query: PageViewsQuery,
  horizon: HorizonState | undefined,
  buckets: {
    readonly starts: readonly number[];
    readonly counts: readonly number[];
    readonly errors: readonly number[];
    readonly visitors?: readonly VisitorSketch[];
  },
): PageViewsResponse {
  const { starts, counts, errors, visitors } = buckets;
  const { granularity } = query;
  const total = counts.reduce((a, b) => a + b, 0);
  const totalErrors = errors.reduce((a, b) => a + b, 0);
  const size = GRANULARITY_MS[granularity];
  const h = horizon?.horizonMs ?? -Infinity;
  const sourceOf = (start: number): BucketSource =>
    granularity === 'minute' || start >= h ? 'speed' : start + size <= h ? 'batch' : 'both';
  return {
    query: echoOf(query),
    horizon: horizon ? toIso(horizon.horizonMs) : null,
    total,
    ...(visitors ? { visitors: visitorCount(unionAll(visitors), total) } : {}),
    ...metricFields(query.metrics, total, totalErrors),
    buckets: starts.map((start, i) => ({
      start: toIso(start),
      end: toIso(start + size),
      source: sourceOf(start),
      count: counts[i]!,
      ...(visitors ? { visitors: visitorCount(visitors[i]!, counts[i]!) } : {}),
      ...metricFields(query.metrics, counts[i]!, errors[i]!),
    })),
  };
}
