import { isSiteId } from '../../shared/event.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EVENT_LIMITS } from '../../shared/event.js';
import { urlOfBytes } from '../../traffic/hostile.js';
import { speedSortKey } from '../../bench/baseline/previous-speed-design.js';
import {
  DYNAMODB_LIMITS,
  MAX_SHARD_ID_BYTES,
  speedPartitionKey,
  VALUE_KEY_BYTES,
  valueKey,
  viewKeys,
} from '../../shared/keys.js';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const MINUTE = Date.UTC(2026, 10, 25, 12, 34);
const LONGEST_SHARD = 's'.repeat(MAX_SHARD_ID_BYTES);
const WIDTHS = [1, 2, 3, 4] as const;

describe('value keys', () => {
  it('keep a value that fits as it is', () => {
    expect(valueKey('US')).toBe('US');
    const fits = urlOfBytes(VALUE_KEY_BYTES, 4);
    expect(valueKey(fits)).toBe(fits);
  });

  it.each(WIDTHS)('bound a longer value of %i-byte characters to the key budget', (width) => {
    for (const size of [VALUE_KEY_BYTES + 1, VALUE_KEY_BYTES + width, EVENT_LIMITS.maxUrlBytes]) {
      const value = urlOfBytes(size, width);
      const key = valueKey(value);
      expect(bytes(key)).toBeLessThanOrEqual(VALUE_KEY_BYTES);
      expect(value.startsWith(key.slice(0, key.lastIndexOf(' ')))).toBe(true);
      // A cut never splits a code point: the prefix round-trips through UTF-8.
      expect(Buffer.from(key, 'utf8').toString('utf8')).toBe(key);
    }
  });

  it('tell apart values that differ only after their first 1,000 bytes', () => {
    const stem = 'https://h.example/' + 's'.repeat(1000);
    expect(valueKey(stem + 'A')).not.toBe(valueKey(stem + 'B'));
  });

  it('never give a long value the key of a short one: bounded forms hold a space, values none', () => {
    const long = urlOfBytes(EVENT_LIMITS.maxUrlBytes, 1);
    expect(valueKey(long)).toContain(' ');
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 600 }), (s) => {
        const value = `https://h.example/${s.replace(/\s/g, '')}`;
        const key = valueKey(value);
        expect(key === value || key.includes(' ')).toBe(true);
        expect(bytes(key)).toBeLessThanOrEqual(VALUE_KEY_BYTES);
      }),
      { numRuns: 300 },
    );
  });
});

/** The longest site id the validator accepts (shared/event.ts): 253 characters of a host name. */
const LONGEST_SITE = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;

describe('table keys at the byte limits', () => {
  it.each(WIDTHS)('fit DynamoDB for the longest url of %i-byte characters', (width) => {
    expect([LONGEST_SITE.length, isSiteId(LONGEST_SITE), isSiteId(`${LONGEST_SITE}x`)]).toEqual([
      253,
      true,
      false,
    ]);
    const url = urlOfBytes(EVENT_LIMITS.maxUrlBytes, width);
    expect(bytes(speedPartitionKey(LONGEST_SITE, 'url', MINUTE))).toBeLessThanOrEqual(
      DYNAMODB_LIMITS.partitionKeyBytes,
    );
    expect(bytes(speedSortKey(MINUTE, url, LONGEST_SHARD))).toBeLessThanOrEqual(DYNAMODB_LIMITS.sortKeyBytes);
    for (const granularity of ['hour', 'day'] as const) {
      const { pk, sk } = viewKeys(LONGEST_SITE, granularity, 'url', MINUTE, url);
      expect(bytes(pk)).toBeLessThanOrEqual(DYNAMODB_LIMITS.partitionKeyBytes);
      expect(bytes(sk)).toBeLessThanOrEqual(DYNAMODB_LIMITS.sortKeyBytes);
    }
  });

  it('give distinct values distinct keys, and the same value the same key', () => {
    const a = urlOfBytes(EVENT_LIMITS.maxUrlBytes, 3, 'a');
    const b = urlOfBytes(EVENT_LIMITS.maxUrlBytes, 3, 'b');
    expect(speedSortKey(MINUTE, a, 'shardId-0')).not.toBe(speedSortKey(MINUTE, b, 'shardId-0'));
    expect(viewKeys('s', 'hour', 'url', MINUTE, a)).toEqual(viewKeys('s', 'hour', 'url', MINUTE, a));
  });
});
