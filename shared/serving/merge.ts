import type { PageViewsResponse } from '../api-types.js';
import {
  EMPTY_BREAKDOWN,
  type BatchViewReader,
  type BreakdownSource,
  type CountDimension,
  type CountRow,
  type HorizonState,
  type SpeedCountReader,
} from '../counts.js';
import type { Dimension } from '../event.js';
import { exactTop } from '../views/top.js';
import { empty as emptySketch, estimate, unionAll, type VisitorSketch } from '../sketch/index.js';
import { bucketStarts, floorTo } from '../time.js';
import type { PageViewsQuery } from './params.js';
import { answerFiltered, type FilteredReaders } from './filtered.js';
import { bucketedAnswer, metricFields, visitorCount } from './metrics.js';

export { metricFields, visitorCount };

/**
 * The merge rule: [from, H) from batch views, [H, to) from speed counters, summed per bucket and value.
 * H is an hour boundary, so only a day bucket can straddle it: that day is split at H (batch hours before,
 * speed after) and marked `both`. Minute buckets exist only in the speed layer's minute counters.
 * A breakdown keeps the top values exactly and sums the rest as `other` = total − the top values.
 */

export interface MergeDeps {
  readonly speed: SpeedCountReader;
  readonly batch: BatchViewReader;
  /** Batch totals for a published version never change: cache them (key → rows). */
  readonly batchCache?: Map<string, CountRow[]>;
  /** Both layers' record blocks, for queries with filters (shared/serving/filtered.ts). */
  readonly filtered?: FilteredReaders;
}

export class FiltersUnavailableError extends Error {
  override readonly name = 'FiltersUnavailableError';
}

async function batchTotals(
  deps: MergeDeps,
  site: string,
  horizon: HorizonState,
  fromMs: number,
  toMs: number,
  granularity: 'hour' | 'day',
  visitors: boolean,
) {
  const key = `${horizon.version}|${site}|${granularity}|${fromMs}|${toMs}|${visitors}`;
  const cached = deps.batchCache?.get(key);
  if (cached) return cached;
  const rows = await deps.batch.readTotals({ site, fromMs, toMs, granularity, visitors }, horizon);
  if (deps.batchCache) {
    if (deps.batchCache.size >= 500) deps.batchCache.delete(deps.batchCache.keys().next().value!);
    deps.batchCache.set(key, rows);
  }
  return rows;
}

/** What a query reads: [from, h) from the batch views at the horizon, [h, to) from speed counters. */
interface Plan {
  readonly deps: MergeDeps;
  readonly query: PageViewsQuery;
  readonly horizon: HorizonState | undefined;
  readonly h: number;
  /** Whether the reads bring visitor sketches. */
  readonly visitors: boolean;
}

/** The range splits at the horizon, clamped to the range; minute buckets exist only in speed counters. */
function planOf(deps: MergeDeps, query: PageViewsQuery, horizon: HorizonState | undefined): Plan {
  const { fromMs, toMs, granularity } = query;
  const h =
    granularity === 'minute' || !horizon ? fromMs : Math.min(Math.max(horizon.horizonMs, fromMs), toMs);
  return { deps, query, horizon, h, visitors: query.metrics.includes('visitors') };
}

/** The speed counters of [h, to) for a dimension; none when the batch views cover the whole range. */
function readSpeed({ deps, query, h, visitors }: Plan, dimension: CountDimension): Promise<CountRow[]> {
  const { toMs, granularity } = query;
  if (toMs <= h) return Promise.resolve([]);
  return deps.speed.readCounts({
    site: query.site,
    dimension,
    fromMs: h,
    toMs,
    granularity: granularity === 'minute' ? 'minute' : 'hour',
    visitors,
  });
}

/** Reads the totals of a query, in parallel, each part from the layer that serves it. */
async function readTotalParts(plan: Plan): Promise<CountRow[][]> {
  const { deps, query, horizon, h, visitors } = plan;
  const { fromMs, granularity } = query;
  const reads = [readSpeed(plan, 'total')];
  if (horizon && fromMs < h) {
    const batch = (from: number, to: number, g: 'hour' | 'day') =>
      batchTotals(deps, query.site, horizon, from, to, g, visitors);
    if (granularity === 'hour') {
      reads.push(batch(fromMs, h, 'hour'));
    } else {
      const fullDaysEnd = floorTo(h, 'day');
      if (fromMs < fullDaysEnd) reads.push(batch(fromMs, fullDaysEnd, 'day'));
      if (fullDaysEnd < h) reads.push(batch(fullDaysEnd, h, 'hour'));
    }
  }
  return Promise.all(reads);
}

type Breakdown = NonNullable<PageViewsResponse['breakdown']>;

/** A breakdown value's page views per bucket and in all, its errors, and its visitors when known. */
interface Entry {
  readonly value: string;
  readonly total: number;
  readonly counts: number[];
  readonly errors: number;
  readonly visitors: number | null;
}

/**
 * The top values of a dimension over the query, exact, without reading every value: the speed part is read
 * whole (it spans an hour or two), the batch part through ranked day lists and per-value lookups. Ranked by
 * page views, or by visitors: a value has at most as many visitors as page views, so the page-view lists
 * bound visitors too, and each value's visitors are the union of its sketches, never a sum.
 */
async function readTopValues(
  plan: Plan,
  by: Dimension,
  top: number,
  bucketOf: (ms: number) => number,
  buckets: number,
): Promise<Entry[]> {
  const { deps, query, horizon, h, visitors: wantVisitors } = plan;
  const [speedRows, source] = await Promise.all([
    readSpeed(plan, by),
    horizon && query.fromMs < h
      ? deps.batch.breakdown(query.site, by, query.fromMs, h, horizon)
      : Promise.resolve<BreakdownSource>(EMPTY_BREAKDOWN),
  ]);
  // The speed part's rows by value, and each value's page views in it.
  const speedOf = new Map<string, CountRow[]>();
  const known = new Map<string, number>();
  for (const row of speedRows) {
    if (!speedOf.has(row.value)) speedOf.set(row.value, []);
    speedOf.get(row.value)!.push(row);
    known.set(row.value, (known.get(row.value) ?? 0) + row.count);
  }
  const batchRows = new Map<string, CountRow[]>();
  const visitors = new Map<string, VisitorSketch>();
  const resolveVisitors = async (values: readonly string[]) => {
    const batch = await source.visitors(values);
    for (const value of values) {
      const speed = (speedOf.get(value) ?? []).map((r) => r.visitors ?? emptySketch());
      visitors.set(value, unionAll([batch.get(value) ?? emptySketch(), ...speed]));
    }
  };
  const ranked = await exactTop({
    blocks: source.blocks,
    known,
    n: top,
    resolve: async (values) => {
      for (const value of values) batchRows.set(value, []);
      for (const row of await source.rows(values)) batchRows.get(row.value)!.push(row);
      if (query.order === 'visitors') {
        await resolveVisitors(values);
        return new Map(values.map((value) => [value, estimate(visitors.get(value)!)]));
      }
      return new Map(
        values.map((value) => [
          value,
          (known.get(value) ?? 0) + batchRows.get(value)!.reduce((sum, r) => sum + r.count, 0),
        ]),
      );
    },
  });
  if (wantVisitors && query.order !== 'visitors') await resolveVisitors(ranked.top.map((t) => t.value));
  return ranked.top.map(({ value }) => {
    const counts = new Array<number>(buckets).fill(0);
    let errors = 0;
    for (const row of [...(batchRows.get(value) ?? []), ...(speedOf.get(value) ?? [])]) {
      counts[bucketOf(row.bucketMs)]! += row.count;
      errors += row.errors ?? 0;
    }
    const total = counts.reduce((a, b) => a + b, 0);
    const sketch = visitors.get(value);
    return { value, total, counts, errors, visitors: sketch ? visitorCount(sketch, total) : null };
  });
}

/** The breakdown: the top values, then the rest summed as `other` = the totals − the top values. */
function breakdownOf(
  { query, visitors: wantVisitors }: Plan,
  top: readonly Entry[],
  totals: readonly number[],
  totalErrors: number,
): Breakdown {
  const entries = [...top];
  const other = totals.map((total, i) => total - entries.reduce((sum, b) => sum + b.counts[i]!, 0));
  const otherTotal = other.reduce((a, b) => a + b, 0);
  if (otherTotal > 0) {
    entries.push({
      value: 'other',
      total: otherTotal,
      counts: other,
      errors: totalErrors - entries.reduce((sum, b) => sum + b.errors, 0),
      // The rest's visitors overlap the top values' and cannot be told apart without every value's sketch.
      visitors: null,
    });
  }
  return entries.map(({ errors, visitors: count, ...entry }) => ({
    ...entry,
    ...(wantVisitors ? { visitors: count } : {}),
    ...metricFields(query.metrics, entry.total, errors),
  }));
}

/** The answer to a query; `known` is the horizon when the caller has read it already (null: none published). */
export async function answerPageViews(
  deps: MergeDeps,
  query: PageViewsQuery,
  known?: HorizonState | null,
): Promise<PageViewsResponse> {
  const { fromMs, toMs, granularity, by, top } = query;
  const horizon = known === undefined ? await deps.batch.readHorizon() : (known ?? undefined);
  if (query.filters.length > 0) {
    if (!deps.filtered) throw new FiltersUnavailableError('this reader has no record blocks for filters');
    return answerFiltered(deps.filtered, query, horizon);
  }
  const plan = planOf(deps, query, horizon);
  const starts = bucketStarts(fromMs, toMs, granularity);
  const index = new Map(starts.map((s, i) => [s, i]));
  const bucketOf = (ms: number) => index.get(floorTo(ms, granularity))!;
  const counts = new Array<number>(starts.length).fill(0);
  const errors = new Array<number>(starts.length).fill(0);
  const sketches = starts.map((): VisitorSketch[] => []);
  // The breakdown's reads run alongside the totals'; only its `other` entry needs the totals.
  const [totalParts, topValues] = await Promise.all([
    readTotalParts(plan),
    by ? readTopValues(plan, by, top, bucketOf, starts.length) : undefined,
  ]);
  for (const rows of totalParts) {
    for (const row of rows) {
      const i = bucketOf(row.bucketMs);
      counts[i]! += row.count;
      errors[i]! += row.errors ?? 0;
      if (row.visitors) sketches[i]!.push(row.visitors);
    }
  }
  // Visitors of a bucket are the union of its rows' sketches, and of the range the union of its buckets'.
  const response = bucketedAnswer(query, horizon, {
    starts,
    counts,
    errors,
    ...(plan.visitors ? { visitors: sketches.map((list) => unionAll(list)) } : {}),
  });
  const totalErrors = errors.reduce((a, b) => a + b, 0);
  if (!topValues) return response;
  return { ...response, breakdown: breakdownOf(plan, topValues, counts, totalErrors) };
}
