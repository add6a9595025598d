import type { Dimension } from './event.js';
import type { Granularity } from './time.js';

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
}

export interface CountQuery<G extends Granularity = Granularity> {
  readonly dimension: CountDimension;
  /** Inclusive, aligned to `granularity`. */
  readonly fromMs: number;
  /** Exclusive, aligned to `granularity`. */
  readonly toMs: number;
  readonly granularity: G;
}

/** Reads the speed layer's minute counters (summed across shards, expired items ignored). */
export interface SpeedCountReader {
  readCounts(query: CountQuery<'minute' | 'hour'>): Promise<CountRow[]>;
  /** Start of the newest minute that has any counter, if any: the speed layer's freshness. */
  newestMinute(): Promise<number | undefined>;
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

/** Reads materialised batch views. Queries must end at or before the horizon they name. */
export interface BatchViewReader {
  readHorizon(): Promise<HorizonState | undefined>;
  readCounts(query: CountQuery<'hour' | 'day'>, horizon: HorizonState): Promise<CountRow[]>;
}
