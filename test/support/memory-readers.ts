import type { BatchViewReader, HorizonState, SpeedCountReader } from '../../shared/counts.js';
import type { PageView } from '../../shared/event.js';
import { minuteBucket } from '../../shared/time.js';
import { truthCounts } from './ground-truth.js';

/** A speed layer that has counted every given event. */
export function memorySpeedReader(events: readonly PageView[]): SpeedCountReader {
  return {
    readCounts: async ({ dimension, fromMs, toMs, granularity }) =>
      truthCounts(events, dimension, granularity, { fromMs, toMs }),
    newestMinute: async () =>
      events.length ? minuteBucket(Math.max(...events.map((e) => e.created))) : undefined,
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
  const reader = {
    reads: 0,
    readHorizon: async () => horizon,
    readCounts: async (
      { dimension, fromMs, toMs, granularity }: Parameters<BatchViewReader['readCounts']>[0],
      h: HorizonState,
    ) => {
      if (toMs > h.horizonMs) throw new Error(`batch read past H: ${toMs} > ${h.horizonMs}`);
      reader.reads += 1;
      return truthCounts(events, dimension, granularity, { fromMs, toMs });
    },
  };
  return reader;
}
