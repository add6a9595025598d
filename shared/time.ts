/** UTC time buckets. All instants are epoch milliseconds; every bucket is half-open [start, end). */

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

export const GRANULARITIES = ['minute', 'hour', 'day'] as const;
export type Granularity = (typeof GRANULARITIES)[number];

export const GRANULARITY_MS: Readonly<Record<Granularity, number>> = {
  minute: MINUTE_MS,
  hour: HOUR_MS,
  day: DAY_MS,
};

export function isGranularity(value: string): value is Granularity {
  return (GRANULARITIES as readonly string[]).includes(value);
}

/** Floors an instant to its bucket. Epoch time has no leap seconds, so UTC buckets are plain modular floors. */
export function floorTo(ms: number, granularity: Granularity): number {
  const size = GRANULARITY_MS[granularity];
  return Math.floor(ms / size) * size;
}

export const minuteBucket = (ms: number): number => floorTo(ms, 'minute');
export const hourBucket = (ms: number): number => floorTo(ms, 'hour');
export const dayBucket = (ms: number): number => floorTo(ms, 'day');

/** The first bucket boundary at or after `ms`. */
export function ceilTo(ms: number, granularity: Granularity): number {
  const size = GRANULARITY_MS[granularity];
  return Math.ceil(ms / size) * size;
}

export function isAligned(ms: number, granularity: Granularity): boolean {
  return ms % GRANULARITY_MS[granularity] === 0;
}

/**
 * Starts of the buckets that intersect [fromMs, toMs), in order.
 * The first bucket may start before `fromMs` when `fromMs` is not aligned.
 */
export function bucketStarts(fromMs: number, toMs: number, granularity: Granularity): number[] {
  const size = GRANULARITY_MS[granularity];
  const starts: number[] = [];
  for (let t = floorTo(fromMs, granularity); t < toMs; t += size) starts.push(t);
  return starts;
}

/** Number of buckets that intersect [fromMs, toMs). */
export function bucketCount(fromMs: number, toMs: number, granularity: Granularity): number {
  if (toMs <= fromMs) return 0;
  return (ceilTo(toMs, granularity) - floorTo(fromMs, granularity)) / GRANULARITY_MS[granularity];
}

/** `2015-06-02T16:36:11.414Z` */
export const toIso = (ms: number): string => new Date(ms).toISOString();

/** The `dt=YYYY-MM-DD/hour=HH` partition of an event time, as Firehose and the Glue table lay out raw data. */
export function hourPartition(ms: number): { dt: string; hour: string } {
  const iso = toIso(ms);
  return { dt: iso.slice(0, 10), hour: iso.slice(11, 13) };
}

export function hourPartitionPath(ms: number): string {
  const { dt, hour } = hourPartition(ms);
  return `dt=${dt}/hour=${hour}`;
}

/** ISO-8601 (UTC) forms of an instant, cut to the unit: the date and time parts of table and object keys. */
/** `2026-11-25T12` */
export const hourKey = (ms: number): string => toIso(ms).slice(0, 13);
/** `2026-11-25T12:34` */
export const minuteKey = (ms: number): string => toIso(ms).slice(0, 16);
/** `2026-11-25` */
export const dayKey = (ms: number): string => toIso(ms).slice(0, 10);
/** `2026-11` */
export const monthKey = (ms: number): string => toIso(ms).slice(0, 7);
