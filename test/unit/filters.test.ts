import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createApiHandler } from '../../lambdas/api/handler.js';
import type { ErrorResponse, LiveResponse, PageViewsResponse } from '../../shared/api-types.js';
import { DIMENSIONS, dimensionValue, type PageView } from '../../shared/event.js';
import {
  blockRows,
  compressBlock,
  decodeBlock,
  encodeRows,
  type BlockRow,
} from '../../shared/filters/block.js';
import {
  admits,
  FILTER_ERRORS,
  FILTER_LIMITS,
  formatFilter,
  parseFilter,
  type FilterErrorName,
} from '../../shared/filters/grammar.js';
import { DAY_MS, HOUR_MS, MINUTE_MS, toIso } from '../../shared/time.js';
import { PageViewGenerator } from '../../traffic/generator.js';
import { apiEvent } from '../../local/api-events.js';
import { truthCounts } from '../support/ground-truth.js';
import { memoryBatchReader, memoryFilteredReaders, memorySpeedReader } from '../support/memory-readers.js';

const NOW = Date.UTC(2026, 10, 25, 15, 20);
const H = Date.UTC(2026, 10, 25, 13);
const events: PageView[] = [
  ...new PageViewGenerator({ seed: 9, startMs: NOW - 2 * DAY_MS, rate: 1 / 60, urlCount: 30 }).take(
    2 * 24 * 60 + 15,
  ),
].map((r) => r.event!);

const api = createApiHandler({
  speed: memorySpeedReader(events),
  batch: memoryBatchReader(
    events.filter((e) => e.created < H),
    H,
  ),
  filtered: memoryFilteredReaders(events, H),
  retentionHours: 48,
  clock: () => NOW,
});

/** A GET with repeated `filter=` parameters, as API Gateway hands it over: raw, and joined by commas. */
async function get<T>(path: string, query: Record<string, string>, filters: readonly string[]) {
  const event = apiEvent(path, query);
  const search = new URLSearchParams(event.rawQueryString);
  for (const filter of filters) search.append('filter', filter);
  const result = await api({
    ...event,
    rawQueryString: search.toString(),
    queryStringParameters: { ...query, ...(filters.length ? { filter: filters.join(',') } : {}) },
  });
  return { status: result.statusCode!, body: JSON.parse(result.body!) as T };
}

describe('the filter grammar', () => {
  it.each([
    ['country:DE', { dimension: 'country', op: 'is', values: ['DE'] }],
    ['country:DE|AT|CH', { dimension: 'country', op: 'is', values: ['AT', 'CH', 'DE'] }],
    ['!browser:FF', { dimension: 'browser', op: 'not', values: ['FF'] }],
    ['url~/blog/', { dimension: 'url', op: 'contains', text: '/blog/' }],
    ['utm_campaign:a\\|b|c', { dimension: 'utm_campaign', op: 'is', values: ['a|b', 'c'] }],
    ['referrer:(none)', { dimension: 'referrer', op: 'is', values: ['(none)'] }],
    ['status:404|500', { dimension: 'status', op: 'is', values: ['404', '500'] }],
  ])('reads %s', (text, filter) => {
    expect(parseFilter(text)).toEqual(filter);
  });

  it.each<[string, FilterErrorName]>([
    ['country', 'filter_syntax'],
    ['country=DE', 'filter_syntax'],
    ['!url~x', 'filter_syntax'],
    ['url:a\\b', 'filter_syntax'],
    ['planet:Mars', 'filter_unknown_dimension'],
    ['country:', 'filter_empty_value'],
    ['country:DE|', 'filter_empty_value'],
    ['country~D', 'filter_contains_unsupported'],
    ['status:abc', 'filter_status_not_a_number'],
    [
      `country:${Array.from({ length: FILTER_LIMITS.maxValues + 1 }, (_, i) => `C${i}`).join('|')}`,
      'filter_too_many_values',
    ],
    [`url:${'x'.repeat(FILTER_LIMITS.maxValueBytes + 1)}`, 'filter_value_too_long'],
  ])('refuses %s as %s', (text, reason) => {
    expect(() => parseFilter(text)).toThrow(expect.objectContaining({ reason }));
  });

  it('writes every filter back in a form that reads as the same filter', () => {
    const value = fc.string({ minLength: 1, maxLength: 12 });
    const filter = fc.oneof(
      fc.record({
        dimension: fc.constantFrom(...DIMENSIONS.filter((d) => d !== 'status')),
        op: fc.constantFrom('is' as const, 'not' as const),
        values: fc.uniqueArray(value, { minLength: 1, maxLength: 4 }).map((v) => [...v].sort()),
      }),
      fc.record({
        dimension: fc.constantFrom('url' as const, 'referrer' as const, 'utm_campaign' as const),
        op: fc.constant('contains' as const),
        text: value,
      }),
    );
    fc.assert(
      fc.property(filter, (f) => {
        expect(parseFilter(formatFilter(f))).toEqual(f);
      }),
    );
  });
});

describe('record blocks', () => {
  it('give back every row they were built from, column by column', () => {
    const text = fc.string({ maxLength: 6 });
    const row = fc.record({
      values: fc.array(text, { minLength: DIMENSIONS.length, maxLength: DIMENSIONS.length }),
      hash: fc.option(fc.integer({ min: 0, max: 2 ** 52 - 1 }), { nil: undefined }),
      count: fc.integer({ min: 1, max: 2 ** 31 }),
    });
    fc.assert(
      fc.property(fc.array(row, { maxLength: 300 }), (rows: BlockRow[]) => {
        expect(blockRows(decodeBlock(compressBlock(encodeRows(rows))))).toEqual(rows);
      }),
      { numRuns: 60 },
    );
  });

  it('keep sequence numbers of any width, and minutes', () => {
    let sequence = 49590338271490256608559692538361571095921575989136588898n;
    const rows = Array.from({ length: 500 }, (_, i) => ({
      values: DIMENSIONS.map((d) => `${d}${i % 300}`),
      hash: i,
      count: 1,
      minute: i % 60,
      sequence: (sequence += BigInt(i) * 2n ** 60n + 1n).toString(),
    }));
    expect(blockRows(decodeBlock(compressBlock(encodeRows(rows))))).toEqual(rows);
  });
});

describe('filtered answers against the events', () => {
  const inRange = (from: number, to: number) => events.filter((e) => e.created >= from && e.created < to);

  it('breaks a filtered range down exactly across H, the day that straddles it split there', async () => {
    const from = H - DAY_MS - 13 * HOUR_MS;
    const to = H + 11 * HOUR_MS;
    const filters = ['country:DE|US', '!browser:FF'];
    const { status, body } = await get<PageViewsResponse>(
      '/v1/pageviews',
      { from: toIso(from), to: toIso(to), granularity: 'day', by: 'url', top: '3', metrics: 'errors' },
      filters,
    );
    expect(status).toBe(200);
    const passing = inRange(from, to).filter((e) => ['DE', 'US'].includes(e.country) && e.browser !== 'FF');
    expect(body.total).toBe(passing.length);
    expect(body.errors).toBe(passing.filter((e) => e.status >= 400).length);
    expect(body.buckets.map((b) => b.source)).toEqual(['batch', 'both']);
    const perUrl = truthCounts(passing, 'url', 'day');
    const totals = new Map<string, number>();
    for (const row of perUrl) totals.set(row.value, (totals.get(row.value) ?? 0) + row.count);
    const ranked = [...totals].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    expect(body.breakdown!.slice(0, 3).map((b) => [b.value, b.total])).toEqual(ranked.slice(0, 3));
    expect(body.breakdown![3]).toMatchObject({
      value: 'other',
      total: ranked.slice(3).reduce((sum, [, n]) => sum + n, 0),
    });
    expect(body.query.filters).toEqual(['country:DE|US', '!browser:FF']);
  });

  it('filters the live view', async () => {
    const { status, body } = await get<LiveResponse>('/v1/live', {}, ['status:200']);
    expect(status).toBe(200);
    const window = inRange(Date.parse(body.from), Date.parse(body.to)).filter((e) => e.status === 200);
    expect(body.pageviews).toBe(window.length);
    expect(body.errors).toBe(0);
    expect(body.minutes.reduce((sum, m) => sum + m.count, 0)).toBe(window.length);
  });

  it('answers a filter with a comma in its value, which API Gateway cannot tell from two filters', async () => {
    const url = events[0]!.url;
    const { status, body } = await get<PageViewsResponse>(
      '/v1/pageviews',
      { from: toIso(H - 2 * HOUR_MS), to: toIso(H + HOUR_MS) },
      [`url:${url}|http://a.example/x,y`],
    );
    expect(status).toBe(200);
    expect(body.total).toBe(inRange(H - 2 * HOUR_MS, H + HOUR_MS).filter((e) => e.url === url).length);
  });

  it('names what is wrong with a filter in a 400', async () => {
    const { status, body } = await get<ErrorResponse>(
      '/v1/pageviews',
      { from: toIso(H - HOUR_MS), to: toIso(H) },
      ['planet:Mars'],
    );
    expect(status).toBe(400);
    expect(body.error).toMatchObject({
      code: 'invalid_filter',
      parameter: 'filter',
      reason: 'filter_unknown_dimension',
    });
  });

  it('never answers random filters with a 5xx, and counts exactly what every valid one admits', async () => {
    const dimension = fc.constantFrom(...DIMENSIONS, 'planet', '');
    const known = fc.constantFrom(
      ...new Set(events.slice(0, 50).flatMap((e) => DIMENSIONS.map((d) => dimensionValue(e, d)))),
    );
    const raw = fc.oneof(
      fc.string(),
      fc
        .tuple(
          fc.constantFrom('', '!'),
          dimension,
          fc.constantFrom(':', '~', '='),
          fc.array(fc.oneof(known, fc.string()), { maxLength: 3 }),
        )
        .map(([not, d, op, values]) => `${not}${d}${op}${values.join('|')}`),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(raw, { maxLength: 3 }), async (filters) => {
        const from = H - 3 * HOUR_MS;
        const to = H + 2 * HOUR_MS;
        const { status, body } = await get<PageViewsResponse & ErrorResponse>(
          '/v1/pageviews',
          { from: toIso(from), to: toIso(to) },
          filters,
        );
        expect([200, 400]).toContain(status);
        if (status === 400) {
          expect(body.error.code).toBe('invalid_filter');
          expect(FILTER_ERRORS).toContain(body.error.reason);
          return;
        }
        const parsed = filters.map(parseFilter);
        const expected = inRange(from, to).filter((e) =>
          parsed.every((f) => admits(f, dimensionValue(e, f.dimension))),
        );
        expect(body.total).toBe(expected.length);
      }),
      { numRuns: 200 },
    );
  });

  it('answers minute buckets under a filter from the speed layer alone', async () => {
    const from = H + HOUR_MS;
    const { body } = await get<PageViewsResponse>(
      '/v1/pageviews',
      { from: toIso(from), to: toIso(from + 30 * MINUTE_MS), granularity: 'minute' },
      ['device:mobile|desktop'],
    );
    const expected = inRange(from, from + 30 * MINUTE_MS).filter((e) =>
      ['mobile', 'desktop'].includes(dimensionValue(e, 'device')),
    );
    expect(body.buckets.every((b) => b.source === 'speed')).toBe(true);
    expect(body.total).toBe(expected.length);
  });
});

describe('the top values of a filtered breakdown (topOf)', () => {
  it('are the first n of a full sort by rank, ties by value', async () => {
    const { topOf } = await import('../../shared/views/top.js');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.string({ maxLength: 3 })), { maxLength: 60 }),
        fc.integer({ min: 0, max: 12 }),
        (pairs, n) => {
          const unique = [...new Map(pairs.map(([rank, value]) => [value, rank])).entries()];
          const before = (a: number, b: number) =>
            unique[a]![1] > unique[b]![1] ||
            (unique[a]![1] === unique[b]![1] && unique[a]![0] < unique[b]![0]);
          const sorted = unique
            .map(([value, rank]) => ({ value, rank }))
            .sort((a, b) => b.rank - a.rank || (a.value < b.value ? -1 : 1));
          expect(topOf(unique.length, n, before).map((id) => unique[id]![0])).toEqual(
            sorted.slice(0, n).map((e) => e.value),
          );
        },
      ),
    );
  });
});
