import type { PageViewsResponse } from '../api-types.js';
import type { HorizonState } from '../counts.js';
import { bucketsOf, FilterTally, type TallyEntries } from '../filters/aggregate.js';
import { headsServe, type HeadsBound, type HeadsQuery } from '../batch/heads.js';
import { estimate, fromHashes, type VisitorSketch } from '../sketch/index.js';
import { bucketStarts, floorTo, GRANULARITY_MS } from '../time.js';
import { bucketedAnswer, metricFields, visitorCount } from './metrics.js';
import type { PageViewsQuery } from './params.js';
import { topOf } from '../views/top.js';

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
  /**
   * The batch part from the cube's heads (shared/batch/heads.ts), for the breakdowns they serve: what they prove
   * about the values they do not list, or undefined, having added nothing, when the range has none.
   */
  heads?(
    site: string,
    fromMs: number,
    toMs: number,
    tally: FilterTally,
    serve: HeadsQuery,
  ): Promise<HeadsBound | undefined>;
}

/**
 * Whether the top values read from heads are the answer: each shown value is listed on every part (its counts are
 * exact), and no other value, whatever the parts that do not list it hold below their floors, can reach the last
 * one shown (ties go by value). When not, the cube answers.
 */
function provenBy(bound: HeadsBound, entries: TallyEntries, chosen: readonly number[], n: number): boolean {
  const { names, count } = entries;
  if (chosen.some((id) => bound.missing(names[id]!) > 0)) return false;
  if (chosen.length < n) return bound.floorSum === 0;
  const last = chosen.at(-1)!;
  if (bound.floorSum >= count[last]!) return false;
  const shown = new Set(chosen);
  for (let id = 0; id < names.length; id += 1) {
    if (shown.has(id)) continue;
    const most = count[id]! + bound.missing(names[id]!);
    if (most > count[last]! || (most === count[last] && names[id]! < names[last]!)) return false;
  }
  return true;
}

const sketchOf = (lists: readonly number[][]): VisitorSketch => fromHashes(lists.flat());

export async function answerFiltered(
  readers: FilteredReaders,
  query: PageViewsQuery,
  horizon: HorizonState | undefined,
  useHeads = true,
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
  const serve = useHeads && readers.heads ? headsServe(query) : undefined;
  let bound: HeadsBound | undefined;
  const batch = async () => {
    if (serve) bound = await readers.heads!(query.site, fromMs, h, tally, serve);
    if (!bound) await readers.batch(query.site, fromMs, h, tally);
  };
  await Promise.all([
    fromMs < h ? batch() : undefined,
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
  const entries = tally.entries();
  const { names } = entries;
  let rank = entries.count;
  if (query.order === 'visitors') {
    const lists = names.map((): number[][] => []);
    entries.value.forEach((v, e) => entries.hashes[e] && lists[v]!.push(entries.hashes[e]!));
    rank = lists.map((l) => estimate(sketchOf(l)));
  }
  const chosen = topOf(
    names.length,
    top,
    (a, b) => rank[a]! > rank[b]! || (rank[a] === rank[b] && names[a]! < names[b]!),
  );
  if (bound && !provenBy(bound, entries, chosen, top)) return answerFiltered(readers, query, horizon, false);
  // Per-bucket sums only for the values shown: a breakdown may hold a million values.
  const buckets = bucketsOf(entries, new Map(chosen.map((id, slot) => [id, slot])));
  const breakdown: NonNullable<PageViewsResponse['breakdown']>[number][] = chosen.map((id, slot) => {
    const out = new Array<number>(starts.length).fill(0);
    for (const [bucketMs, sum] of buckets[slot]!) out[indexOf(bucketMs)]! += sum.count;
    return {
      value: names[id]!,
      total: entries.count[id]!,
      counts: out,
      ...(wantVisitors
        ? {
            visitors: visitorCount(
              sketchOf([...buckets[slot]!.values()].map((b) => b.hashes ?? [])),
              entries.count[id]!,
            ),
          }
        : {}),
      ...metricFields(query.metrics, entries.count[id]!, entries.errors[id]!),
    };
  });
  const total = counts.reduce((sum, c) => sum + c, 0);
  const totalErrors = errors.reduce((sum, c) => sum + c, 0);
  const otherTotal = total - chosen.reduce((sum, id) => sum + entries.count[id]!, 0);
  const otherErrors = totalErrors - chosen.reduce((sum, id) => sum + entries.errors[id]!, 0);
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
