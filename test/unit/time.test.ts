import { describe, expect, it } from 'vitest';
import {
  bucketCount,
  bucketStarts,
  ceilTo,
  dayBucket,
  HOUR_MS,
  hourBucket,
  hourPartitionPath,
  minuteBucket,
} from '../../shared/time.js';

const at = (iso: string) => Date.parse(iso);

describe('UTC buckets', () => {
  it('floors to the minute, hour and day in UTC', () => {
    const t = at('2026-03-29T01:59:59.999Z'); // a DST change night in Europe: UTC is unaffected
    expect(minuteBucket(t)).toBe(at('2026-03-29T01:59:00Z'));
    expect(hourBucket(t)).toBe(at('2026-03-29T01:00:00Z'));
    expect(dayBucket(t)).toBe(at('2026-03-29T00:00:00Z'));
  });

  it('keeps an instant on a boundary in the bucket it starts', () => {
    const midnight = at('2026-01-01T00:00:00Z');
    expect(dayBucket(midnight)).toBe(midnight);
    expect(hourBucket(midnight - 1)).toBe(at('2025-12-31T23:00:00Z'));
    expect(dayBucket(midnight - 1)).toBe(at('2025-12-31T00:00:00Z'));
  });

  it('handles leap days', () => {
    expect(dayBucket(at('2028-02-29T23:59:59Z'))).toBe(at('2028-02-29T00:00:00Z'));
    expect(dayBucket(at('2028-02-29T23:59:59Z') + 1000)).toBe(at('2028-03-01T00:00:00Z'));
  });

  it('ceils to the next boundary unless aligned', () => {
    expect(ceilTo(at('2026-01-01T10:00:00Z'), 'hour')).toBe(at('2026-01-01T10:00:00Z'));
    expect(ceilTo(at('2026-01-01T10:00:00.001Z'), 'hour')).toBe(at('2026-01-01T11:00:00Z'));
  });
});

describe('bucket ranges', () => {
  it('lists the buckets that intersect a half-open range', () => {
    const from = at('2026-01-01T10:30:00Z');
    const to = at('2026-01-01T13:00:00Z');
    expect(bucketStarts(from, to, 'hour')).toEqual([
      at('2026-01-01T10:00:00Z'),
      at('2026-01-01T11:00:00Z'),
      at('2026-01-01T12:00:00Z'),
    ]);
    expect(bucketCount(from, to, 'hour')).toBe(3);
  });

  it('is empty when the range is empty', () => {
    const t = at('2026-01-01T10:00:00Z');
    expect(bucketStarts(t, t, 'minute')).toEqual([]);
    expect(bucketCount(t, t, 'minute')).toBe(0);
  });

  it('counts a year of days across a year boundary', () => {
    expect(bucketCount(at('2025-07-01T00:00:00Z'), at('2026-07-01T00:00:00Z'), 'day')).toBe(365);
    expect(bucketCount(at('2026-01-01T00:00:00Z'), at('2026-01-01T00:00:00Z') + HOUR_MS, 'minute')).toBe(60);
  });
});

describe('raw partitions', () => {
  it('names the event-time hour partition in UTC', () => {
    expect(hourPartitionPath(at('2026-12-31T23:59:59.999Z'))).toBe('dt=2026-12-31/hour=23');
    expect(hourPartitionPath(at('2027-01-01T00:00:00Z'))).toBe('dt=2027-01-01/hour=00');
  });
});
