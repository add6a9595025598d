import type { LiveResponse } from '../api-types.js';
import { TOTAL_VALUE, type CountRow, type SpeedCountReader } from '../counts.js';
import { FilterTally } from '../filters/aggregate.js';
import { formatFilter, type Filter } from '../filters/grammar.js';
import type { FilteredReaders } from './filtered.js';
import { FiltersUnavailableError } from './merge.js';
import { unionAll, type VisitorSketch } from '../sketch/index.js';
import { visitorCount } from './metrics.js';
import { floorTo, MINUTE_MS, toIso } from '../time.js';

/**
 * The live view: the last five minutes from the speed layer alone (the seed's "unique active users" and
 * sliding counts): page views and visitors per minute and over the window, errors, and the top pages.
 * The current minute is still filling; it is the window's last bucket.
 */

const LIVE_WINDOW_MINUTES = 5;
const LIVE_TOP_PAGES = 10;

/**
 * The window's totals per minute and its page views per url: from the minute counters, or with filters from the
 * rollup blocks (shared/speed/rollup.ts), whose rows per (minute, url) sum to the filtered totals.
 */
async function liveRows(
  speed: SpeedCountReader,
  site: string,
  fromMs: number,
  toMs: number,
  filters: readonly Filter[],
  filtered: FilteredReaders | undefined,
): Promise<{ totals: CountRow[]; urls: CountRow[] }> {
  if (filters.length === 0) {
    const [totals, urls] = await Promise.all([
      speed.readCounts({ site, dimension: 'total', fromMs, toMs, granularity: 'minute', visitors: true }),
      speed.readCounts({ site, dimension: 'url', fromMs, toMs, granularity: 'minute' }),
    ]);
    return { totals, urls };
  }
  if (!filtered) throw new FiltersUnavailableError('this reader has no record blocks for filters');
  const tally = new FilterTally({ filters, by: 'url', granularity: 'minute', fromMs, toMs, visitors: true });
  await filtered.speed(site, fromMs, toMs, tally);
  const urls = tally.rows();
  const minutes = new Map<number, { count: number; errors: number; sketches: VisitorSketch[] }>();
  for (const row of urls) {
    let minute = minutes.get(row.bucketMs);
    if (!minute) minutes.set(row.bucketMs, (minute = { count: 0, errors: 0, sketches: [] }));
    minute.count += row.count;
    minute.errors += row.errors ?? 0;
    if (row.visitors) minute.sketches.push(row.visitors);
  }
  const totals = [...minutes.entries()].map(([bucketMs, m]) => ({
    bucketMs,
    value: TOTAL_VALUE,
    count: m.count,
    errors: m.errors,
    visitors: unionAll(m.sketches),
  }));
  return { totals, urls };
}

export async function answerLive(
  speed: SpeedCountReader,
  site: string,
  nowMs: number,
  filters: readonly Filter[] = [],
  filtered?: FilteredReaders,
): Promise<LiveResponse> {
  const toMs = floorTo(nowMs, 'minute') + MINUTE_MS;
  const fromMs = toMs - LIVE_WINDOW_MINUTES * MINUTE_MS;
  const { totals, urls } = await liveRows(speed, site, fromMs, toMs, filters, filtered);
  const pageviews = totals.reduce((sum, r) => sum + r.count, 0);
  const minutes = Array.from({ length: LIVE_WINDOW_MINUTES }, (_, i) => {
    const start = fromMs + i * MINUTE_MS;
    const row = totals.find((r) => r.bucketMs === start);
    return {
      start: toIso(start),
      count: row?.count ?? 0,
      visitors: row?.visitors ? visitorCount(row.visitors, row.count) : 0,
    };
  });
  const pages = new Map<string, number>();
  for (const row of urls) pages.set(row.value, (pages.get(row.value) ?? 0) + row.count);
  const errors = totals.reduce((sum, r) => sum + (r.errors ?? 0), 0);
  return {
    site,
    ...(filters.length > 0 ? { filters: filters.map(formatFilter) } : {}),
    from: toIso(fromMs),
    to: toIso(toMs),
    pageviews,
    visitors: visitorCount(unionAll(totals.flatMap((r) => (r.visitors ? [r.visitors] : []))), pageviews),
    errors,
    errorRate: pageviews > 0 ? errors / pageviews : null,
    minutes,
    topPages: [...pages.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, LIVE_TOP_PAGES)
      .map(([url, count]) => ({ url, count })),
  };
}
