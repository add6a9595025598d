import type {
  BatchViewReader,
  BreakdownSource,
  HorizonState,
  SpeedCountReader,
} from '../../shared/counts.js';
import { dimensionValue, DIMENSIONS, type Dimension, type PageView } from '../../shared/event.js';
import { DAY_MS, dayBucket, floorTo, hourBucket, HOUR_MS, minuteBucket } from '../../shared/time.js';
import type { FilterTally } from '../../shared/filters/aggregate.js';
import type { Block } from '../../shared/filters/block.js';
import { BlockBuilder, compressBlock, decodeBlock } from '../../shared/filters/block.js';
import type { FilteredReaders } from '../../shared/serving/filtered.js';
import { userHash } from '../../shared/sketch/index.js';
import type { RankedBlock } from '../../shared/counts.js';
import { truthCounts, truthVisitors } from './ground-truth.js';

/** A speed layer that has counted every given event. */
export function memorySpeedReader(events: readonly PageView[]): SpeedCountReader {
  const of = (site: string) => events.filter((e) => e.site === site);
  const minutes = (site: string, fromMs = -Infinity, toMs = Infinity) =>
    of(site)
      .filter((e) => e.created >= fromMs && e.created < toMs)
      .map((e) => minuteBucket(e.created));
  return {
    readCounts: async ({ site, dimension, fromMs, toMs, granularity, visitors }) =>
      truthCounts(of(site), dimension, granularity, { fromMs, toMs, ...(visitors ? { visitors } : {}) }),
    newestMinute: async (site) => {
      const all = minutes(site);
      return all.length ? Math.max(...all) : undefined;
    },
    minuteSpan: async (site, fromMs, toMs) => {
      const within = minutes(site, fromMs, toMs);
      return within.length ? { firstMs: Math.min(...within), lastMs: Math.max(...within) } : undefined;
    },
  };
}

/** A batch layer whose views hold the given events, published at `horizonMs` (none when undefined). */
export function memoryBatchReader(
  events: readonly PageView[],
  horizonMs: number | undefined,
): BatchViewReader & { reads: number } {
  const horizon: HorizonState | undefined =
    horizonMs === undefined
      ? undefined
      : {
          horizonMs,
          version: `v${horizonMs}`,
          publishedAtMs: horizonMs,
          computedFromMs: horizonMs - 3_600_000,
          computedToMs: horizonMs,
        };
  const check = (toMs: number, h: HorizonState) => {
    if (toMs > h.horizonMs) throw new Error(`batch read past H: ${toMs} > ${h.horizonMs}`);
    reader.reads += 1;
  };
  const of = (site: string) => events.filter((e) => e.site === site);
  const reader = {
    reads: 0,
    readHorizon: async () => horizon,
    readTotals: async (
      { site, fromMs, toMs, granularity, visitors }: Parameters<BatchViewReader['readTotals']>[0],
      h: HorizonState,
    ) => {
      check(toMs, h);
      return truthCounts(of(site), 'total', granularity, { fromMs, toMs, ...(visitors ? { visitors } : {}) });
    },
    siteSpans: async () => {
      const hours = new Map<string, number[]>();
      for (const e of events) hours.set(e.site, [...(hours.get(e.site) ?? []), hourBucket(e.created)]);
      return [...hours].map(([site, list]) => ({
        site,
        firstHourMs: Math.min(...list),
        lastHourMs: Math.max(...list),
      }));
    },
    breakdown: async (site: string, dimension: Dimension, fromMs: number, toMs: number, h: HorizonState) => {
      check(toMs, h);
      const events = of(site);
      // One ranked list per day, by whole-day counts (upper bounds for a day the range cuts).
      const days = new Map<number, Map<string, number>>();
      for (const row of truthCounts(events, dimension, 'day', {
        fromMs: dayBucket(fromMs),
        toMs: dayBucket(toMs - 1) + DAY_MS,
      }))
        days.set(row.bucketMs, new Map([...(days.get(row.bucketMs) ?? []), [row.value, row.count]]));
      const blocks: RankedBlock[] = [...days.values()].map((counts) => {
        const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
        return {
          read: async (depth: number) => ({ rows: ranked.slice(0, depth), complete: depth >= ranked.length }),
        };
      });
      const hourly = truthCounts(events, dimension, 'hour', { fromMs, toMs });
      const inRange = events.filter((e) => e.created >= fromMs && e.created < toMs);
      return {
        blocks,
        rows: async (values: readonly string[]) => hourly.filter((row) => values.includes(row.value)),
        visitors: async (values: readonly string[]) =>
          new Map(
            values.map((value) => [
              value,
              truthVisitors(inRange.filter((e) => dimensionValue(e, dimension) === value)),
            ]),
          ),
      } satisfies BreakdownSource;
    },
  };
  return reader;
}

/**
 * Both layers' record blocks over events held in memory, through the real block format and tally: the batch part
 * of events before `horizonMs` (an hour block each, grouped rows), the speed part of all of them (minutes kept).
 */
export function memoryFilteredReaders(events: readonly PageView[], horizonMs = -Infinity): FilteredReaders {
  const blocks = (list: readonly PageView[], speed: boolean) => {
    const hours = new Map<number, BlockBuilder>();
    for (const event of [...list].sort((a, b) => a.created - b.created)) {
      const hourMs = floorTo(event.created, 'hour');
      let builder = hours.get(hourMs);
      if (!builder) hours.set(hourMs, (builder = new BlockBuilder()));
      builder.add({
        values: DIMENSIONS.map((d) => dimensionValue(event, d)),
        hash: userHash(event.userId),
        ...(speed ? { minute: Math.floor((event.created % HOUR_MS) / 60_000) } : { count: 1 }),
      });
    }
    return new Map(
      [...hours].map(([hourMs, builder]) => [hourMs, decodeBlock(compressBlock(builder.encode()))]),
    );
  };
  const batch = blocks(
    events.filter((e) => e.created < horizonMs),
    false,
  );
  const speed = blocks(events, true);
  // Every event here is of one site: the readers answer for it and for no other.
  const site = events[0]?.site;
  const read =
    (source: Map<number, Block>) => async (of: string, fromMs: number, toMs: number, tally: FilterTally) => {
      if (of !== site) return;
      for (const [hourMs, block] of source)
        if (hourMs + HOUR_MS > fromMs && hourMs < toMs) tally.add(block, hourMs);
    };
  return { batch: read(batch), speed: read(speed) };
}
