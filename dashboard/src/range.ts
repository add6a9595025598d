/** Query ranges for the dashboard's range picker, aligned to the granularity as the API requires (UTC). */

export type Granularity = 'minute' | 'hour' | 'day';
export const STEP: Record<Granularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const SPAN: Record<string, number> = { hour: 3_600_000, day: 86_400_000, week: 7 * 86_400_000 };

const floorTo = (ms: number, g: Granularity) => Math.floor(ms / STEP[g]) * STEP[g];
const ceilTo = (ms: number, g: Granularity) => Math.ceil(ms / STEP[g]) * STEP[g];

/** `[from, to)` for a named range ending with the bucket that holds `now`, or for a custom range. */
export function rangeFor(
  range: string,
  granularity: Granularity,
  now: number,
  custom?: { from: number; to: number },
): { from: number; to: number } {
  if (range === 'custom' && custom) {
    const from = floorTo(custom.from, granularity);
    return { from, to: Math.max(from + STEP[granularity], ceilTo(custom.to, granularity)) };
  }
  const end = floorTo(now, granularity) + STEP[granularity];
  const span = SPAN[range] ?? SPAN.day!;
  return { from: Math.min(end - STEP[granularity], floorTo(end - span, granularity)), to: end };
}
