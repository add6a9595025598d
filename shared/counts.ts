import type { Dimension } from './event.js';
import type { Granularity } from './time.js';
import { empty as emptySketch, type VisitorSketch } from './sketch/index.js';

/**
 * The contract between the layers: the speed layer and the batch layer each answer count queries,
 * and the serving layer merges their answers at the horizon H.
 */

/** A dimension to count by, or `total` for all events. */
export type CountDimension = Dimension | 'total';

/** The one value of the `total` dimension. */
export const TOTAL_VALUE = 'all';

/** Page views of one dimension value in one bucket. */
export interface CountRow {
  /** Bucket start, epoch ms UTC. */
  readonly bucketMs: number;
  readonly value: string;
  readonly count: number;
  /** Of those, page views with status 400 or above (absent where a layer does not count them). */
  readonly errors?: number;
  /** The distinct visitors of the row, when the reader was asked for them. */
  readonly visitors?: VisitorSketch;
}

export interface CountQuery<G extends Granularity = Granularity> {
  /** The site whose events are counted: no answer ever sums two sites. */
  readonly site: string;
  readonly dimension: CountDimension;
  /** Inclusive, aligned to `granularity`. */
  readonly fromMs: number;
  /** Exclusive, aligned to `granularity`. */
  readonly toMs: number;
  readonly granularity: G;
}

/** Reads the speed layer's minute counters (summed across shards, expired items ignored). */
export interface SpeedCountReader {
  /** With `visitors`, each row carries the union of its cells' visitor sketches. */
  readCounts(query: CountQuery<'minute' | 'hour'> & { readonly visitors?: boolean }): Promise<CountRow[]>;
  /** Start of the site's newest minute that has any counter (of the last two hours), if any: its freshness. */
  newestMinute(site: string): Promise<number | undefined>;
  /**
   * The site's earliest and latest minute with a counter among the hours [fromMs, toMs) (hour-aligned): one
   * single-item Query per hour and end, oldest first for the earliest and newest first for the latest.
   */
  minuteSpan(
    site: string,
    fromMs: number,
    toMs: number,
  ): Promise<{ firstMs: number; lastMs: number } | undefined>;
}

/** What the latest successful batch run published. */
export interface HorizonState {
  /** H: batch views are complete for event time < H. An hour boundary; only moves forward. */
  readonly horizonMs: number;
  /** Identifies the published set of views; immutable for a given horizon, so readers may cache by it. */
  readonly version: string;
  readonly publishedAtMs: number;
  /** Hours the run that published H (re)computed, [from, to). */
  readonly computedFromMs: number;
  readonly computedToMs: number;
}

/**
 * A dimension's batch views over a range, for an exact top-N (shared/views/top.ts): a ranked list per day
 * (whole-day counts; upper bounds for a day the range covers only in part) and exact hourly rows by value.
 */
export interface BreakdownSource {
  readonly blocks: readonly RankedBlock[];
  /** The hourly rows of these values inside the range (values without any are left out). */
  rows(values: readonly string[]): Promise<CountRow[]>;
  /** The distinct visitors of each of these values over the range. */
  visitors(values: readonly string[]): Promise<Map<string, VisitorSketch>>;
}

/** A ranked list of one block (a day of a dimension, shared/views/top.ts): its values by count descending (ties by value ascending). */
export interface RankedBlock {
  /** The first `depth` rows (or all, when fewer), and whether they are all the block has. */
  read(
    depth: number,
  ): Promise<{ readonly rows: readonly (readonly [string, number])[]; readonly complete: boolean }>;
}

/** A breakdown of an empty range. */
export const EMPTY_BREAKDOWN: BreakdownSource = {
  blocks: [],
  rows: async () => [],
  visitors: async (values) => new Map(values.map((value) => [value, emptySketch()])),
};

/** Reads materialised batch views. Queries must end at or before the horizon they name. */
export interface BatchViewReader {
  readHorizon(): Promise<HorizonState | undefined>;
  /** Page views of all events per hour or day (with visitor sketches when `visitors` is set). */
  readTotals(
    query: Omit<CountQuery<'hour' | 'day'>, 'dimension'> & { readonly visitors?: boolean },
    horizon: HorizonState,
  ): Promise<CountRow[]>;
  /** Each site's first and last hour with a page view in the batch views (shared/batch/sites.ts). */
  siteSpans(): Promise<readonly { site: string; firstHourMs: number; lastHourMs: number }[]>;
  breakdown(
    site: string,
    dimension: Dimension,
    fromMs: number,
    toMs: number,
    horizon: HorizonState,
  ): Promise<BreakdownSource>;
}
