import type { LiveResponse } from '../api-types.js';
import type { SpeedCountReader } from '../counts.js';
import { unionAll } from '../sketch/index.js';
import { visitorCount } from './merge.js';
import { floorTo, MINUTE_MS, toIso } from '../time.js';

/**
 * The live view: the last five minutes from the speed layer alone (the seed's "unique active users" and
 * sliding counts): page views and visitors per minute and over the window, errors, and the top pages.
 * The current minute is still filling; it is the window's last bucket.
 */

const LIVE_WINDOW_MINUTES = 5;
const LIVE_TOP_PAGES = 10;

export async function answerLive(
  speed: SpeedCountReader,
  site: string,
  nowMs: number,
): Promise<LiveResponse> {
  const toMs = floorTo(nowMs, 'minute') + MINUTE_MS;
  const fromMs = toMs - LIVE_WINDOW_MINUTES * MINUTE_MS;
  const [totals, urls] = await Promise.all([
    speed.readCounts({ site, dimension: 'total', fromMs, toMs, granularity: 'minute', visitors: true }),
    speed.readCounts({ site, dimension: 'url', fromMs, toMs, granularity: 'minute' }),
  ]);
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
