import type { PageViewsResponse } from '../api-types.js';
import { formatFilter } from '../filters/grammar.js';
import { estimate, type VisitorSketch } from '../sketch/index.js';
import { toIso } from '../time.js';
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
