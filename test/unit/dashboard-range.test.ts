import { describe, expect, it } from 'vitest';
import { rangeFor } from '../../dashboard/src/range.js';

const NOW = Date.parse('2026-11-25T12:34:56Z');

describe('dashboard ranges', () => {
  it('ends each named range with the bucket that holds now, aligned to the granularity', () => {
    expect(rangeFor('hour', 'minute', NOW)).toEqual({
      from: Date.parse('2026-11-25T11:35:00Z'),
      to: Date.parse('2026-11-25T12:35:00Z'),
    });
    expect(rangeFor('day', 'hour', NOW)).toEqual({
      from: Date.parse('2026-11-24T13:00:00Z'),
      to: Date.parse('2026-11-25T13:00:00Z'),
    });
    expect(rangeFor('week', 'day', NOW)).toEqual({
      from: Date.parse('2026-11-19T00:00:00Z'),
      to: Date.parse('2026-11-26T00:00:00Z'),
    });
  });

  it('widens a custom range to whole buckets and never makes it empty', () => {
    const custom = { from: Date.parse('2026-11-20T10:15:00Z'), to: Date.parse('2026-11-20T10:15:00Z') };
    expect(rangeFor('custom', 'hour', NOW, custom)).toEqual({
      from: Date.parse('2026-11-20T10:00:00Z'),
      to: Date.parse('2026-11-20T11:00:00Z'),
    });
  });
});
