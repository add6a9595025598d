import { TOTAL_VALUE, type CountDimension, type CountRow } from '../../shared/counts.js';
import { dimensionValue, type PageView } from '../../shared/event.js';
import { floorTo, type Granularity } from '../../shared/time.js';

/** Counts computed directly from the valid events: what every layer must reproduce. */
export function truthCounts(
  events: readonly PageView[],
  dimension: CountDimension,
  granularity: Granularity,
  range: { fromMs?: number; toMs?: number } = {},
): CountRow[] {
  const sums = new Map<string, { bucketMs: number; value: string; count: number }>();
  for (const event of events) {
    if (range.fromMs !== undefined && event.created < range.fromMs) continue;
    if (range.toMs !== undefined && event.created >= range.toMs) continue;
    const bucketMs = floorTo(event.created, granularity);
    const value = dimension === 'total' ? TOTAL_VALUE : dimensionValue(event, dimension);
    const key = `${bucketMs}\n${value}`;
    const row = sums.get(key);
    if (row) row.count += 1;
    else sums.set(key, { bucketMs, value, count: 1 });
  }
  return sortRows([...sums.values()]);
}

export function sortRows(rows: readonly CountRow[]): CountRow[] {
  return [...rows].sort(
    (a, b) => a.bucketMs - b.bucketMs || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0),
  );
}
