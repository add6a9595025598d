import type { BucketSource, PageViewsResponse } from '../api-types.js';
import type { HorizonState } from '../counts.js';
import { FilterTally } from '../filters/aggregate.js';
import { estimate, unionAll, type VisitorSketch } from '../sketch/index.js';
import { bucketStarts, floorTo, GRANULARITY_MS, toIso } from '../time.js';
import { echoOf, metricFields, visitorCount } from './metrics.js';
import type { PageViewsQuery } from './params.js';

/**
 * Filtered answers (docs/filters.md): the same merge rule as every answer, [from, H) from the batch layer's cube
 * and [H, to) from the speed layer's rollup blocks, both tallied by one code path (shared/filters/aggregate.ts)
 * into rows per bucket and breakdown value. A day that straddles H gets its hours before H from the cube and the
 * rest from the rollups, and is marked `both`. Every value of the filtered range is counted, so the top values and
 * `other` are exact without a ranking structure.
 */

/** The two layers' filtered parts, each adding the page views of a range to a tally. */
export interface FilteredReaders {
  /** The speed part: a site's rollup blocks of [fromMs, toMs) (minute-aligned). */
  speed(site: string, fromMs: number, toMs: number, tally: FilterTally): Promise<void>;
  /** The batch part: a site's cube hours of [fromMs, toMs) (hour-aligned, before H). */
  batch(site: string, fromMs: number, toMs: number, tally: FilterTally): Promise<void>;
}

interface ValueEntry {
  readonly value: string;
  total: number;
  errors: number;
  readonly counts: number[];
  readonly sketches: VisitorSketch[];
}

export async function answerFiltered(
  readers: FilteredReaders,
  query: PageViewsQuery,
  horizon: HorizonState | undefined,
): Promise<PageViewsResponse> {
  const { fromMs, toMs, granularity, by, top, filters } = query;
  const h =
    granularity === 'minute' || !horizon ? fromMs : Math.min(Math.max(horizon.horizonMs, fromMs), toMs);
  const wantVisitors = query.metrics.includes('visitors');
  const tally = new FilterTally({
    filters,
    ...(by ? { by } : {}),
    granularity,
    fromMs,
    toMs,
    visitors: wantVisitors,
  });
  await Promise.all([
    fromMs < h ? readers.batch(query.site, fromMs, h, tally) : undefined,
    h < toMs ? readers.speed(query.site, h, toMs, tally) : undefined,
  ]);
  const starts = bucketStarts(fromMs, toMs, granularity);
  const index = new Map(starts.map((s, i) => [s, i]));
  const counts = new Array<number>(starts.length).fill(0);
  const errors = new Array<number>(starts.length).fill(0);
  const sketches = starts.map((): VisitorSketch[] => []);
  const values = new Map<string, ValueEntry>();
  for (const row of tally.rows()) {
    const i = index.get(floorTo(row.bucketMs, granularity))!;
    counts[i]! += row.count;
    errors[i]! += row.errors ?? 0;
    if (row.visitors) sketches[i]!.push(row.visitors);
    if (!by) continue;
    let entry = values.get(row.value);
    if (!entry) {
      entry = {
        value: row.value,
        total: 0,
        errors: 0,
        counts: new Array<number>(starts.length).fill(0),
        sketches: [],
      };
      values.set(row.value, entry);
    }
    entry.total += row.count;
    entry.errors += row.errors ?? 0;
    entry.counts[i]! += row.count;
    if (row.visitors) entry.sketches.push(row.visitors);
  }
  const total = counts.reduce((a, b) => a + b, 0);
  const totalErrors = errors.reduce((a, b) => a + b, 0);
  const bucketVisitors = wantVisitors ? sketches.map((list) => unionAll(list)) : [];
  const size = GRANULARITY_MS[granularity];
  const hMs = horizon?.horizonMs ?? -Infinity;
  const sourceOf = (start: number): BucketSource =>
    granularity === 'minute' || start >= hMs ? 'speed' : start + size <= hMs ? 'batch' : 'both';
  const response: PageViewsResponse = {
    query: echoOf(query),
    horizon: horizon ? toIso(horizon.horizonMs) : null,
    total,
    ...(wantVisitors ? { visitors: visitorCount(unionAll(bucketVisitors), total) } : {}),
    ...metricFields(query.metrics, total, totalErrors),
    buckets: starts.map((start, i) => ({
      start: toIso(start),
      end: toIso(start + size),
      source: sourceOf(start),
      count: counts[i]!,
      ...(wantVisitors ? { visitors: visitorCount(bucketVisitors[i]!, counts[i]!) } : {}),
      ...metricFields(query.metrics, counts[i]!, errors[i]!),
    })),
  };
  if (!by) return response;
  const visitorsOf = new Map<string, number>();
  const ranked = [...values.values()];
  if (wantVisitors)
    for (const entry of ranked)
      visitorsOf.set(entry.value, visitorCount(unionAll(entry.sketches), entry.total));
  const rankOf = (entry: ValueEntry) =>
    query.order === 'visitors' ? estimate(unionAll(entry.sketches)) : entry.total;
  const rank = new Map(ranked.map((entry) => [entry.value, rankOf(entry)]));
  ranked.sort((a, b) => rank.get(b.value)! - rank.get(a.value)! || (a.value < b.value ? -1 : 1));
  const chosen = ranked.slice(0, top);
  const breakdown: NonNullable<PageViewsResponse['breakdown']>[number][] = chosen.map((entry) => ({
    value: entry.value,
    total: entry.total,
    counts: entry.counts,
    ...(wantVisitors ? { visitors: visitorsOf.get(entry.value)! } : {}),
    ...metricFields(query.metrics, entry.total, entry.errors),
  }));
  const rest = ranked.slice(top);
  const otherTotal = rest.reduce((sum, e) => sum + e.total, 0);
  if (otherTotal > 0) {
    breakdown.push({
      value: 'other',
      total: otherTotal,
      counts: counts.map((c, i) => c - chosen.reduce((sum, e) => sum + e.counts[i]!, 0)),
      ...(wantVisitors ? { visitors: null } : {}),
      ...metricFields(
        query.metrics,
        otherTotal,
        rest.reduce((sum, e) => sum + e.errors, 0),
      ),
    });
  }
  return { ...response, breakdown };
}
