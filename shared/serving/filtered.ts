import type { PageViewsResponse } from '../api-types.js';
import type { HorizonState } from '../counts.js';
import { FilterTally, type ValueSums } from '../filters/aggregate.js';
import { estimate, fromHashes, type VisitorSketch } from '../sketch/index.js';
import { bucketStarts, floorTo, GRANULARITY_MS } from '../time.js';
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
export interface ValueEntry {
  readonly sums: ValueSums;
  readonly hashes: number[][];
  readonly rank: number;
}

/** Whether `a` ranks before `b`: more page views (or visitors), ties by value. */
const before = (a: ValueEntry, b: ValueEntry): boolean =>
  a.rank > b.rank || (a.rank === b.rank && a.sums.value < b.sums.value);

/**
 * The `n` first entries in rank order, through a heap of `n`: a value below the heap's last is let go after one
 * comparison of numbers, so a million values cost no sort (nor a million string comparisons among their ties).
 */
export function topOf(entries: readonly ValueEntry[], n: number): ValueEntry[] {
  const heap: ValueEntry[] = []; // heap[0] ranks last among those kept
  const down = (at: number) => {
    for (;;) {
      const l = 2 * at + 1;
      const r = l + 1;
      let last = at;
      if (l < heap.length && before(heap[last]!, heap[l]!)) last = l;
      if (r < heap.length && before(heap[last]!, heap[r]!)) last = r;
      if (last === at) return;
      [heap[at], heap[last]] = [heap[last]!, heap[at]!];
      at = last;
    }
  };
  for (const entry of entries) {
    if (heap.length < n) {
      heap.push(entry);
      for (let at = heap.length - 1; at > 0;) {
        const parent = (at - 1) >> 1;
        if (!before(heap[parent]!, heap[at]!)) break;
        [heap[at], heap[parent]] = [heap[parent]!, heap[at]!];
        at = parent;
      }
    } else if (n > 0 && before(entry, heap[0]!)) {
      heap[0] = entry;
      down(0);
    }
  }
  return heap.sort((a, b) => (before(a, b) ? -1 : 1));
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
  const size = GRANULARITY_MS[granularity];
  // Buckets are of fixed size (minute, hour, day), and a tally's bucket starts are aligned to the granularity.
  const indexOf = (bucketMs: number) => Math.floor((floorTo(bucketMs, granularity) - starts[0]!) / size);
  const counts = new Array<number>(starts.length).fill(0);
  const errors = new Array<number>(starts.length).fill(0);
  const bucketHashes = starts.map((): number[] => []);
  for (const [bucketMs, sum] of tally.buckets()) {
    const i = indexOf(bucketMs);
    counts[i]! += sum.count;
    errors[i]! += sum.errors;
    if (sum.hashes) for (const h of sum.hashes) bucketHashes[i]!.push(h);
  }
  const response = bucketedAnswer(query, horizon, {
    starts,
    counts,
    errors,
    ...(wantVisitors ? { visitors: bucketHashes.map((list) => fromHashes(list)) } : {}),
  });
  if (!by) return response;
  // Ranked by page views (or visitors), ties by value; only the shown values' buckets are read.
  const values = [...tally.values()].map((sums): ValueEntry => {
    const hashes = wantVisitors ? sums.hashes.filter((list): list is number[] => list !== undefined) : [];
    return { sums, hashes, rank: query.order === 'visitors' ? estimate(sketchOf(hashes)) : sums.count };
  });
  const chosen = topOf(values, top);
  // Per-bucket counts only for the values shown: a breakdown may hold a million values.
  const countsOf = ({ sums }: ValueEntry): number[] => {
    const out = new Array<number>(starts.length).fill(0);
    sums.bucketMs.forEach((bucketMs, k) => (out[indexOf(bucketMs)]! += sums.counts[k]!));
    return out;
  };
  const breakdown: NonNullable<PageViewsResponse['breakdown']>[number][] = chosen.map((entry) => ({
    value: entry.sums.value,
    total: entry.sums.count,
    counts: countsOf(entry),
    ...(wantVisitors ? { visitors: visitorCount(sketchOf(entry.hashes), entry.sums.count) } : {}),
    ...metricFields(query.metrics, entry.sums.count, entry.sums.errors),
  }));
  const shown = new Set(chosen);
  let otherTotal = 0;
  let otherErrors = 0;
  for (const entry of values)
    if (!shown.has(entry)) {
      otherTotal += entry.sums.count;
      otherErrors += entry.sums.errors;
    }
  if (otherTotal > 0) {
    breakdown.push({
      value: 'other',
      total: otherTotal,
      counts: counts.map((c, i) => c - breakdown.reduce((sum, e) => sum + e.counts[i]!, 0)),
      ...(wantVisitors ? { visitors: null } : {}),
      ...metricFields(query.metrics, otherTotal, otherErrors),
    });
  }
  return { ...response, breakdown };
}
