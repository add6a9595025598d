import { TOTAL_VALUE, type CountDimension, type CountRow } from '../../shared/counts.js';
import { dimensionValue, type PageView } from '../../shared/event.js';
import type { GeneratedRecord } from '../../traffic/generator.js';
import { fromHashes, userHash, type VisitorSketch } from '../../shared/sketch/index.js';
import { floorTo, HOUR_MS, type Granularity } from '../../shared/time.js';

/**
 * Splits what producers sent into the page views a correct pipeline counts (every valid event once) and the
 * re-sends (an eventId already seen in the same event hour), which the batch layer does not count again and
 * the speed layer counts only when a re-send lands in another batch. Events without an eventId count per record.
 */
export function splitResends(records: readonly Pick<GeneratedRecord, 'event'>[]): {
  events: PageView[];
  resends: PageView[];
} {
  const seen = new Set<string>();
  const events: PageView[] = [];
  const resends: PageView[] = [];
  for (const { event } of records) {
    if (!event) continue;
    if (event.eventId !== undefined) {
      const identity = `${event.site}@${Math.floor(event.created / HOUR_MS)}@${event.eventId}`;
      if (seen.has(identity)) {
        resends.push(event);
        continue;
      }
      seen.add(identity);
    }
    events.push(event);
  }
  return { events, resends };
}

/** Counts (and errors: status 400 or above) computed directly from the valid events: what every layer must reproduce. */
export function truthCounts(
  events: readonly PageView[],
  dimension: CountDimension,
  granularity: Granularity,
  range: { fromMs?: number; toMs?: number; visitors?: boolean } = {},
): (CountRow & { errors: number })[] {
  const sums = new Map<
    string,
    { bucketMs: number; value: string; count: number; errors: number; events: PageView[] }
  >();
  for (const event of events) {
    if (range.fromMs !== undefined && event.created < range.fromMs) continue;
    if (range.toMs !== undefined && event.created >= range.toMs) continue;
    const bucketMs = floorTo(event.created, granularity);
    const value = dimension === 'total' ? TOTAL_VALUE : dimensionValue(event, dimension);
    const key = `${bucketMs}\n${value}`;
    const error = event.status >= 400 ? 1 : 0;
    const row = sums.get(key);
    if (row) {
      row.count += 1;
      row.errors += error;
      row.events.push(event);
    } else sums.set(key, { bucketMs, value, count: 1, errors: error, events: [event] });
  }
  return sortRows(
    [...sums.values()].map(({ events: inRow, ...row }) =>
      range.visitors ? { ...row, visitors: truthVisitors(inRow) } : row,
    ),
  );
}

export function sortRows<R extends CountRow>(rows: readonly R[]): R[] {
  return [...rows].sort(
    (a, b) => a.bucketMs - b.bucketMs || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0),
  );
}

/** The visitors sketch of these events: every distinct userId, through the same hash the layers use. */
export function truthVisitors(events: readonly PageView[]): VisitorSketch {
  return fromHashes(events.map((e) => userHash(e.userId)));
}
