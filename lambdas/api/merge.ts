import type { BucketSource, PageViewsResponse } from '../../shared/api-types.js';
import {
  type BatchViewReader,
  type CountDimension,
  type CountRow,
  type HorizonState,
  type SpeedCountReader,
} from '../../shared/counts.js';
import { bucketStarts, floorTo, GRANULARITY_MS, toIso } from '../../shared/time.js';
import type { PageViewsQuery } from './params.js';

/**
 * The merge rule: [from, H) from batch views, [H, to) from speed counters, summed per bucket and value.
 * H is an hour boundary, so only a day bucket can straddle it: that day is split at H (batch hours before,
 * speed after) and marked `both`. Minute buckets exist only in the speed layer's minute counters.
 */

export interface MergeDeps {
  readonly speed: SpeedCountReader;
  readonly batch: BatchViewReader;
  /** Batch reads for a published version never change: cache them (key → rows). */
  readonly batchCache?: Map<string, CountRow[]>;
}

interface Part {
  readonly source: 'batch' | 'speed';
  readonly rows: CountRow[];
}

async function batchRows(
  deps: MergeDeps,
  horizon: HorizonState,
  dimension: CountDimension,
  fromMs: number,
  toMs: number,
  granularity: 'hour' | 'day',
) {
  const key = `${horizon.version}|${dimension}|${granularity}|${fromMs}|${toMs}`;
  const cached = deps.batchCache?.get(key);
  if (cached) return cached;
  const rows = await deps.batch.readCounts({ dimension, fromMs, toMs, granularity }, horizon);
  if (deps.batchCache) {
    if (deps.batchCache.size >= 500) deps.batchCache.delete(deps.batchCache.keys().next().value!);
    deps.batchCache.set(key, rows);
  }
  return rows;
}

/** Reads the parts of a query, in parallel, each from the layer that serves it. */
async function readParts(
  deps: MergeDeps,
  query: PageViewsQuery,
  dimension: CountDimension,
  horizon: HorizonState | undefined,
): Promise<Part[]> {
  const { fromMs, toMs, granularity } = query;
  if (granularity === 'minute') {
    return [
      {
        source: 'speed',
        rows: await deps.speed.readCounts({ dimension, fromMs, toMs, granularity: 'minute' }),
      },
    ];
  }
  const h = horizon ? Math.min(Math.max(horizon.horizonMs, fromMs), toMs) : fromMs;
  const reads: Promise<Part>[] = [];
  if (h < toMs) {
    reads.push(
      deps.speed
        .readCounts({ dimension, fromMs: h, toMs, granularity: 'hour' })
        .then((rows) => ({ source: 'speed', rows })),
    );
  }
  if (horizon && fromMs < h) {
    if (granularity === 'hour') {
      reads.push(
        batchRows(deps, horizon, dimension, fromMs, h, 'hour').then((rows) => ({ source: 'batch', rows })),
      );
    } else {
      const fullDaysEnd = floorTo(h, 'day');
      if (fromMs < fullDaysEnd) {
        reads.push(
          batchRows(deps, horizon, dimension, fromMs, fullDaysEnd, 'day').then((rows) => ({
            source: 'batch',
            rows,
          })),
        );
      }
      if (fullDaysEnd < h) {
        reads.push(
          batchRows(deps, horizon, dimension, fullDaysEnd, h, 'hour').then((rows) => ({
            source: 'batch',
            rows,
          })),
        );
      }
    }
  }
  return Promise.all(reads);
}

export async function answerPageViews(deps: MergeDeps, query: PageViewsQuery): Promise<PageViewsResponse> {
  const { fromMs, toMs, granularity, by, top } = query;
  const horizon = await deps.batch.readHorizon();
  const dimension: CountDimension = by ?? 'total';
  const [totalParts, byParts] = await Promise.all([
    readParts(deps, query, 'total', horizon),
    by ? readParts(deps, query, dimension, horizon) : Promise.resolve(undefined),
  ]);
  const starts = bucketStarts(fromMs, toMs, granularity);
  const index = new Map(starts.map((s, i) => [s, i]));
  const size = GRANULARITY_MS[granularity];
  const counts = new Array<number>(starts.length).fill(0);
  for (const part of totalParts) {
    for (const row of part.rows) counts[index.get(floorTo(row.bucketMs, granularity))!]! += row.count;
  }
  const h = horizon?.horizonMs ?? -Infinity;
  const sourceOf = (start: number): BucketSource =>
    granularity === 'minute' || start >= h ? 'speed' : start + size <= h ? 'batch' : 'both';

  const response: PageViewsResponse = {
    query: {
      from: toIso(fromMs),
      to: toIso(toMs),
      granularity,
      ...(by ? { by } : {}),
      ...(top ? { top } : {}),
    },
    horizon: horizon ? toIso(horizon.horizonMs) : null,
    total: counts.reduce((a, b) => a + b, 0),
    buckets: starts.map((start, i) => ({
      start: toIso(start),
      end: toIso(start + size),
      source: sourceOf(start),
      count: counts[i]!,
    })),
  };
  if (!byParts) return response;

  const perValue = new Map<string, number[]>();
  for (const part of byParts) {
    for (const row of part.rows) {
      let series = perValue.get(row.value);
      if (!series) perValue.set(row.value, (series = new Array<number>(starts.length).fill(0)));
      series[index.get(floorTo(row.bucketMs, granularity))!]! += row.count;
    }
  }
  const ranked = [...perValue.entries()]
    .map(([value, series]) => ({ value, total: series.reduce((a, b) => a + b, 0), counts: series }))
    .sort((a, b) => b.total - a.total || (a.value < b.value ? -1 : 1));
  const kept = ranked.slice(0, top ?? ranked.length);
  const rest = ranked.slice(kept.length);
  if (rest.length > 0) {
    const other = new Array<number>(starts.length).fill(0);
    for (const r of rest) r.counts.forEach((c, i) => (other[i]! += c));
    kept.push({ value: 'other', total: other.reduce((a, b) => a + b, 0), counts: other });
  }
  return { ...response, breakdown: kept };
}
