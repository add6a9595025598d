import { estimate, type VisitorSketch } from '../sketch/index.js';
import type { Metric } from './params.js';

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
