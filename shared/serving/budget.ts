import { AsyncLocalStorage } from 'node:async_hooks';
import type { HorizonState } from '../counts.js';
import { DAY_MS, floorTo, HOUR_MS } from '../time.js';
import { QUERY_LIMITS, type PageViewsQuery } from './params.js';

/**
 * What one request may cost the stores. A request makes at most `STORE_REQUEST_CEILING` store requests
 * (DynamoDB queries and their pages, S3 reads): twice the bucket cap and 100, so that an answer at the cap may
 * read each of its buckets' totals and one breakdown once (a 1,500-hour breakdown from speed counters before
 * the first batch run: 3,001), with room for the horizon and the months' partitions. A query whose plan needs
 * more is refused before any
 * read, with a 400 that names the parameters to narrow; one that reaches the ceiling while it runs (deeper
 * reads than planned) is stopped there with the same answer. Every request's count is logged.
 */

export const STORE_REQUEST_CEILING = 2 * QUERY_LIMITS.maxBuckets + 100;

export class RequestTooLargeError extends Error {
  override readonly name = 'RequestTooLargeError';
  constructor(
    /** The store requests the query needs (planned), or made before it was stopped. */
    readonly needed: number,
    /** The parameters whose narrowing lowers the cost. */
    readonly parameters: readonly string[],
  ) {
    super(
      `this query needs ${needed > STORE_REQUEST_CEILING ? 'at least ' : ''}${needed} store requests ` +
        `(DynamoDB queries and S3 reads); a request may make at most ${STORE_REQUEST_CEILING}: narrow ${parameters.join(', ')}`,
    );
  }
}

/** The parameters that lower a query's cost: its range, and its breakdown and visitors when asked for. */
export function narrowable(query: PageViewsQuery): string[] {
  return [
    'from',
    'to',
    ...(query.by ? ['by'] : []),
    ...(query.metrics.includes('visitors') ? ['metrics'] : []),
  ];
}

const months = (fromMs: number, toMs: number): number => {
  const start = new Date(fromMs);
  const end = new Date(toMs - 1);
  return (end.getUTCFullYear() - start.getUTCFullYear()) * 12 + end.getUTCMonth() - start.getUTCMonth() + 1;
};

/**
 * The fewest store requests a query can make at the horizon `horizon`: the horizon itself, one speed query
 * per hour and dimension from H on, the batch totals' partitions (a day each for hours, a month for days), and
 * for a breakdown the months' manifests and the head of each day's ranking (and each day's visitors).
 */
export function plannedStoreRequests(query: PageViewsQuery, horizon: HorizonState | undefined): number {
  const { fromMs, toMs, granularity } = query;
  const h =
    granularity === 'minute' || !horizon ? fromMs : Math.min(Math.max(horizon.horizonMs, fromMs), toMs);
  if (query.filters.length > 0) {
    // Filtered (docs/filters.md): the speed part's rollup hours, the months' cube manifests and an object per hour.
    let filtered = 1 + Math.ceil((toMs - Math.min(h, toMs)) / HOUR_MS);
    if (fromMs < h) filtered += months(fromMs, h) + Math.ceil((h - fromMs) / HOUR_MS);
    return filtered;
  }
  const dimensions = query.by ? 2 : 1;
  let requests = 1 + Math.ceil((toMs - Math.min(h, toMs)) / HOUR_MS) * dimensions;
  if (fromMs < h) {
    const days = Math.ceil((h - floorTo(fromMs, 'day')) / DAY_MS);
    if (granularity === 'hour') requests += days;
    else {
      const fullDaysEnd = floorTo(h, 'day');
      if (fromMs < fullDaysEnd) requests += months(fromMs, fullDaysEnd);
      if (fullDaysEnd < h) requests += 1;
    }
    if (query.by) requests += months(fromMs, h) + days * (query.metrics.includes('visitors') ? 2 : 1);
  }
  return requests;
}

/** Counts one request's store requests; past the ceiling the next one throws. */
export class StoreRequestMeter {
  count = 0;
  constructor(private readonly stopWith?: () => readonly string[]) {}

  add(): void {
    this.count += 1;
    if (this.count > STORE_REQUEST_CEILING && this.stopWith)
      throw new RequestTooLargeError(this.count, this.stopWith());
  }
}

const current = new AsyncLocalStorage<StoreRequestMeter>();

/** Runs `work` with `meter` counting every store request made inside it (across awaits). */
export function metering<T>(meter: StoreRequestMeter, work: () => Promise<T>): Promise<T> {
  return current.run(meter, work);
}

/** A reader's request callback that also counts into the meter of the request it runs for. */
export function countingStoreRequests<A extends unknown[]>(
  inner?: (...args: A) => void,
): (...args: A) => void {
  return (...args) => {
    inner?.(...args);
    current.getStore()?.add();
  };
}
