import type { PageViewsResponse } from '../api-types.js';
import type { HorizonState } from '../counts.js';
import { FilterTally, type ValueSums } from '../filters/aggregate.js';
import { estimate, fromHashes, type VisitorSketch } from '../sketch/index.js';
import { bucketStarts, floorTo } from '../time.js';
import { bucketedAnswer, metricFields, visitorCount } from './metrics.js';
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

/** A breakdown value's sums, with its visitor hashes per bucket (when the query counts visitors). */
interface ValueEntry {
  readonly sums: ValueSums;
  readonly hashes: number[][];
}

const sketchOf = (lists: readonly number[][]): VisitorSketch => fromHashes(lists.flat());

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
  const bucketHashes = starts.map((): number[][] => []);
  const values: ValueEntry[] = [];
  for (const sums of tally.values()) {
    const hashes: number[][] = [];
    sums.bucketMs.forEach((bucketMs, k) => {
      const i = index.get(floorTo(bucketMs, granularity))!;
      counts[i]! += sums.counts[k]!;
      errors[i]! += sums.errorCounts[k]!;
      const list = sums.hashes[k];
      if (list) {
        bucketHashes[i]!.push(list);
        hashes.push(list);
      }
    });
    if (by) values.push({ sums, hashes });
  }
  const response = bucketedAnswer(query, horizon, {
    starts,
    counts,
    errors,
    ...(wantVisitors ? { visitors: bucketHashes.map(sketchOf) } : {}),
  });
  if (!by) return response;
  const rankOf = (entry: ValueEntry) =>
    query.order === 'visitors' ? estimate(sketchOf(entry.hashes)) : entry.sums.count;
  const rank = new Map(values.map((entry) => [entry, rankOf(entry)]));
  values.sort((a, b) => rank.get(b)! - rank.get(a)! || (a.sums.value < b.sums.value ? -1 : 1));
  const chosen = values.slice(0, top);
  // Per-bucket counts only for the values shown: a breakdown may hold a million values.
  const countsOf = ({ sums }: ValueEntry): number[] => {
    const out = new Array<number>(starts.length).fill(0);
    sums.bucketMs.forEach(
      (bucketMs, k) => (out[index.get(floorTo(bucketMs, granularity))!]! += sums.counts[k]!),
    );
    return out;
  };
  const breakdown: NonNullable<PageViewsResponse['breakdown']>[number][] = chosen.map((entry) => ({
    value: entry.sums.value,
    total: entry.sums.count,
    counts: countsOf(entry),
    ...(wantVisitors ? { visitors: visitorCount(sketchOf(entry.hashes), entry.sums.count) } : {}),
    ...metricFields(query.metrics, entry.sums.count, entry.sums.errors),
  }));
  const rest = values.slice(top);
  const otherTotal = rest.reduce((sum, e) => sum + e.sums.count, 0);
  if (otherTotal > 0) {
    breakdown.push({
      value: 'other',
      total: otherTotal,
      counts: counts.map((c, i) => c - breakdown.reduce((sum, e) => sum + e.counts[i]!, 0)),
      ...(wantVisitors ? { visitors: null } : {}),
      ...metricFields(
        query.metrics,
        otherTotal,
        rest.reduce((sum, e) => sum + e.sums.errors, 0),
      ),
    });
  }
  return { ...response, breakdown };
}
