import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createApiHandler } from '../../lambdas/api/handler.js';
import { OPENAPI_DOCUMENT } from '../../shared/serving/openapi.js';
import type {
  ErrorResponse,
  LiveResponse,
  PageViewsResponse,
  StatusResponse,
} from '../../shared/api-types.js';
import type { PageView } from '../../shared/event.js';
import { PageViewGenerator } from '../../traffic/generator.js';
import { DAY_MS, HOUR_MS, hourBucket, toIso } from '../../shared/time.js';
import { apiEvent } from '../../local/api-events.js';
import { truthCounts } from '../support/ground-truth.js';
import { schemaErrors } from '../support/json-schema.js';
import { memoryBatchReader, memorySpeedReader } from '../support/memory-readers.js';
import { expectVisitors } from '../support/sketch.js';

const NOW = Date.UTC(2026, 10, 25, 15, 20);
const H = Date.UTC(2026, 10, 25, 13);
const events: PageView[] = [
  ...new PageViewGenerator({ seed: 3, startMs: NOW - 3 * DAY_MS, rate: 1 / 60, userCount: 2000 }).take(
    3 * 24 * 60 + 15,
  ),
].map((r) => r.event!);

/** Batch holds only events before H; speed holds every event, as it does before its counters expire. */
const handler = (horizon: number | null = H) =>
  createApiHandler({
    speed: memorySpeedReader(events),
    batch: memoryBatchReader(
      events.filter((e) => horizon === null || e.created < horizon),
      horizon ?? undefined,
    ),
    retentionHours: 48,
    clock: () => NOW,
  });

async function get<T>(
  path: string,
  query: Record<string, string> = {},
  horizon: number | null = H,
): Promise<{ status: number; body: T }> {
  const result = await handler(horizon)(apiEvent(path, query));
  return { status: result.statusCode!, body: JSON.parse(result.body!) as T };
}

const pageViews = (query: Record<string, string>) => get<PageViewsResponse>('/v1/pageviews', query, H);

describe('merge at the horizon', () => {
  it('serves hours before H from batch views and hours from H on from speed counters', async () => {
    const { status, body } = await pageViews({
      from: toIso(H - 3 * HOUR_MS),
      to: toIso(H + 2 * HOUR_MS),
      granularity: 'hour',
    });
    expect(status).toBe(200);
    expect(body.horizon).toBe(toIso(H));
    expect(body.buckets.map((b) => b.source)).toEqual(['batch', 'batch', 'batch', 'speed', 'speed']);
    const truth = truthCounts(events, 'total', 'hour', { fromMs: H - 3 * HOUR_MS, toMs: H + 2 * HOUR_MS });
    expect(body.buckets.map((b) => b.count)).toEqual(truth.map((r) => r.count));
    expect(body.total).toBe(truth.reduce((a, r) => a + r.count, 0));
  });

  it('splits a day that straddles H and counts it once', async () => {
    const from = Date.UTC(2026, 10, 23);
    const to = Date.UTC(2026, 10, 26);
    const { body } = await pageViews({ from: String(from), to: String(to), granularity: 'day' });
    expect(body.buckets.map((b) => b.source)).toEqual(['batch', 'batch', 'both']);
    expect(body.buckets.map((b) => b.count)).toEqual(
      truthCounts(events, 'total', 'day', { fromMs: from, toMs: to }).map((r) => r.count),
    );
  });

  it('serves everything from speed before the first batch run', async () => {
    const { body } = await get<PageViewsResponse>(
      '/v1/pageviews',
      { from: toIso(H - HOUR_MS), to: toIso(H + HOUR_MS) },
      null,
    );
    expect(body.horizon).toBeNull();
    expect(body.buckets.map((b) => b.source)).toEqual(['speed', 'speed']);
  });

  it('breaks down by a dimension, top values first, the rest summed as other', async () => {
    const from = H - 6 * HOUR_MS;
    const to = H + 2 * HOUR_MS;
    const { body } = await pageViews({ from: toIso(from), to: toIso(to), by: 'country', top: '3' });
    const breakdown = body.breakdown!;
    expect(breakdown.map((b) => b.value).slice(-1)).toEqual(['other']);
    expect(breakdown).toHaveLength(4);
    const totals = breakdown.slice(0, 3).map((b) => b.total);
    expect(totals).toEqual([...totals].sort((a, b) => b - a));
    for (let i = 0; i < body.buckets.length; i += 1) {
      expect(breakdown.reduce((sum, b) => sum + b.counts[i]!, 0)).toBe(body.buckets[i]!.count);
    }
    const truthUs = truthCounts(events, 'country', 'hour', { fromMs: from, toMs: to }).filter(
      (r) => r.value === 'US',
    );
    expect(breakdown[0]).toMatchObject({ value: 'US', total: truthUs.reduce((a, r) => a + r.count, 0) });
  });

  it('reports errors (status 400 or above) and the error rate per bucket, over the range and per value', async () => {
    const from = H - 6 * HOUR_MS;
    const to = H + 2 * HOUR_MS;
    const { body } = await pageViews({
      from: toIso(from),
      to: toIso(to),
      by: 'country',
      top: '3',
      metrics: 'errors,error_rate',
    });
    const range = { fromMs: from, toMs: to };
    const truth = truthCounts(events, 'total', 'hour', range);
    expect(body.query.metrics).toEqual(['pageviews', 'errors', 'error_rate']);
    expect(body.buckets.map((b) => [b.errors, b.errorRate])).toEqual(
      truth.map((r) => [r.errors, r.errors / r.count]),
    );
    const errors = truth.reduce((sum, r) => sum + r.errors, 0);
    expect(body.errors).toBe(errors);
    expect(body.errorRate).toBe(errors / body.total);
    const byCountry = truthCounts(events, 'country', 'hour', range);
    for (const entry of body.breakdown!.slice(0, 3)) {
      const rows = byCountry.filter((r) => r.value === entry.value);
      expect(entry.errors).toBe(rows.reduce((sum, r) => sum + r.errors, 0));
      expect(entry.errorRate).toBe(entry.errors! / entry.total);
    }
    expect(body.breakdown!.reduce((sum, b) => sum + b.errors!, 0)).toBe(errors);
  });

  it('reports visitors per bucket, over the range and per value, as unions across buckets and the split at H', async () => {
    const from = Math.floor(H / DAY_MS) * DAY_MS - DAY_MS;
    const to = from + 2 * DAY_MS;
    const { body } = await pageViews({
      from: toIso(from),
      to: toIso(to),
      granularity: 'day',
      by: 'browser',
      top: '2',
      metrics: 'visitors',
    });
    const inRange = events.filter((e) => e.created >= from && e.created < to);
    const distinct = (list: PageView[]) => new Set(list.map((e) => e.userId)).size;
    expect(body.buckets[1]!.source).toBe('both');
    body.buckets.forEach((bucket, i) => {
      const day = inRange.filter(
        (e) => e.created >= from + i * DAY_MS && e.created < from + (i + 1) * DAY_MS,
      );
      expectVisitors(bucket.visitors, distinct(day));
    });
    // Users come back across days: the range's visitors are fewer than the sum of the days'.
    expectVisitors(body.visitors, distinct(inRange));
    expect(body.visitors).toBeLessThan(body.buckets.reduce((sum, b) => sum + b.visitors!, 0));
    for (const entry of body.breakdown!.slice(0, 2))
      expectVisitors(entry.visitors, distinct(inRange.filter((e) => e.browser === entry.value)));
    expect(body.breakdown!.find((b) => b.value === 'other')?.visitors).toBeNull();
  });

  it('ranks a breakdown by visitors with order=visitors', async () => {
    const from = H - 12 * HOUR_MS;
    const to = H + 2 * HOUR_MS;
    const { body } = await pageViews({
      from: toIso(from),
      to: toIso(to),
      by: 'url',
      top: '5',
      order: 'visitors',
    });
    const inRange = events.filter((e) => e.created >= from && e.created < to);
    const byUrl = new Map<string, Set<string>>();
    for (const e of inRange) byUrl.set(e.url, (byUrl.get(e.url) ?? new Set()).add(e.userId));
    const ranked = [...byUrl.entries()]
      .map(([value, users]) => [value, users.size] as const)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, 5);
    expect(body.query.order).toBe('visitors');
    expect(body.breakdown!.slice(0, 5).map((b) => [b.value, b.visitors])).toEqual(ranked);
  });

  it('answers as before when no metric is asked for', async () => {
    const { body } = await pageViews({ from: toIso(H - HOUR_MS), to: toIso(H + HOUR_MS), by: 'url' });
    expect(body.query.metrics).toBeUndefined();
    expect(body).not.toHaveProperty('errors');
    expect(body.buckets[0]).not.toHaveProperty('errors');
  });

  it('serves minute buckets from the speed counters within the retention window', async () => {
    const from = hourBucket(NOW) - HOUR_MS;
    const { status, body } = await pageViews({
      from: toIso(from),
      to: toIso(from + 30 * 60_000),
      granularity: 'minute',
    });
    expect(status).toBe(200);
    expect(body.buckets).toHaveLength(30);
    expect(body.buckets.every((b) => b.source === 'speed')).toBe(true);
  });

  it('caches batch reads for a published version', async () => {
    const batch = memoryBatchReader(
      events.filter((e) => e.created < H),
      H,
    );
    const api = createApiHandler({
      speed: memorySpeedReader(events),
      batch,
      retentionHours: 48,
      clock: () => NOW,
    });
    const query = { from: toIso(H - 5 * HOUR_MS), to: toIso(H + HOUR_MS) };
    await api(apiEvent('/v1/pageviews', query));
    const reads = batch.reads;
    await api(apiEvent('/v1/pageviews', query));
    expect(batch.reads).toBe(reads);
  });
});

describe('bad input', () => {
  const valid = { from: toIso(H - HOUR_MS), to: toIso(H) };
  it.each([
    ['from', { to: valid.to }],
    ['from', { ...valid, from: 'yesterday' }],
    ['from', { ...valid, from: '2026-11-25T10:00:00' }],
    ['from', { from: valid.to, to: valid.from }],
    ['from', { ...valid, from: toIso(H - HOUR_MS + 1) }],
    ['to', { from: valid.from }],
    ['to', { from: toIso(H - 100 * DAY_MS), to: valid.to }],
    ['granularity', { ...valid, granularity: 'week' }],
    [
      'granularity',
      {
        from: toIso(NOW - 3 * DAY_MS - (NOW % HOUR_MS)),
        to: toIso(NOW - 2 * DAY_MS - (NOW % HOUR_MS)),
        granularity: 'minute',
      },
    ],
    ['by', { ...valid, by: 'referer' }],
    ['top', { ...valid, by: 'url', top: 'ten' }],
    ['top', { ...valid, by: 'url', top: '0' }],
    ['top', { ...valid, top: '5' }],
    ['limit', { ...valid, limit: '5' }],
    ['metrics', { ...valid, metrics: 'pageviews,bounces' }],
    ['metrics', { ...valid, metrics: '' }],
    ['order', { ...valid, order: 'visitors' }],
    ['order', { ...valid, by: 'url', order: 'errors' }],
  ])('rejects a bad %s with a 400 naming it', async (parameter, query) => {
    const { status, body } = await get<ErrorResponse>('/v1/pageviews', query, H);
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ code: 'invalid_parameter', parameter });
  });

  it('never answers bad input with a 5xx', async () => {
    const api = handler(H);
    const value = fc.oneof(
      fc.string(),
      fc.integer().map(String),
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.constantFrom('minute', 'hour', 'day', 'url', 'country', '', '-1', '1e3', 'NaN'),
    );
    const params = fc.dictionary(
      fc.constantFrom('from', 'to', 'granularity', 'by', 'top', 'x', 'from '),
      value,
      { maxKeys: 6 },
    );
    await fc.assert(
      fc.asyncProperty(params, async (query) => {
        const result = await api(apiEvent('/v1/pageviews', query));
        expect([200, 400]).toContain(result.statusCode);
      }),
      { numRuns: 400 },
    );
  });

  it('answers unknown paths with 404 and other methods with 405', async () => {
    expect((await handler()(apiEvent('/v2/x'))).statusCode).toBe(404);
    expect((await handler()(apiEvent('/v1/status', {}, 'POST'))).statusCode).toBe(405);
  });
});

describe('OpenAPI document', () => {
  const schema = (name: string) =>
    OPENAPI_DOCUMENT.components.schemas[name as keyof typeof OPENAPI_DOCUMENT.components.schemas];

  it('is served and is OpenAPI 3.1', async () => {
    const { status, body } = await get<typeof OPENAPI_DOCUMENT>('/v1/openapi.json');
    expect(status).toBe(200);
    expect(body.openapi).toBe('3.1.0');
  });

  it('describes real answers: page views with and without a breakdown, status, and errors', async () => {
    const answers = [
      ['PageViews', await pageViews({ from: toIso(H - DAY_MS), to: toIso(H + HOUR_MS) })],
      [
        'PageViews',
        await pageViews({ from: toIso(H - DAY_MS), to: toIso(H + HOUR_MS), by: 'status', top: '2' }),
      ],
      [
        'PageViews',
        await pageViews({
          from: toIso(H - DAY_MS),
          to: toIso(H + HOUR_MS),
          by: 'url',
          top: '2',
          metrics: 'errors,error_rate',
        }),
      ],
      ['Live', await get<LiveResponse>('/v1/live', {}, H)],
      ['Status', await get<StatusResponse>('/v1/status', {}, H)],
      ['Status', await get<StatusResponse>('/v1/status', {}, null)],
      ['Error', await pageViews({ from: 'x' })],
    ] as const;
    for (const [name, { body }] of answers)
      expect(schemaErrors(schema(name), body, OPENAPI_DOCUMENT)).toEqual([]);
  });

  it('lists every parameter the handler accepts', () => {
    const names = OPENAPI_DOCUMENT.paths['/v1/pageviews'].get.parameters.map((p) => p.name);
    expect(names.sort()).toEqual([
      'by',
      'filter',
      'from',
      'granularity',
      'metrics',
      'order',
      'site',
      'to',
      'top',
    ]);
  });
});

describe('live view', () => {
  it('reports the last five minutes from the speed layer: page views, visitors, errors and top pages', async () => {
    const { status, body } = await get<LiveResponse>('/v1/live', {}, H);
    expect(status).toBe(200);
    const to = Math.floor(NOW / 60_000) * 60_000 + 60_000;
    const window = events.filter((e) => e.created >= to - 5 * 60_000 && e.created < to);
    expect(window.length).toBeGreaterThan(0);
    expect(body.from).toBe(toIso(to - 5 * 60_000));
    expect(body.pageviews).toBe(window.length);
    expect(body.visitors).toBe(new Set(window.map((e) => e.userId)).size);
    expect(body.errors).toBe(window.filter((e) => e.status >= 400).length);
    expect(body.minutes.map((m) => m.count).reduce((a, b) => a + b, 0)).toBe(window.length);
    const pages = new Map<string, number>();
    for (const e of window) pages.set(e.url, (pages.get(e.url) ?? 0) + 1);
    expect(body.topPages[0]).toEqual({
      url: [...pages.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0],
      count: Math.max(...pages.values()),
    });
  });
});

describe('status', () => {
  it('reports the horizon, the last run and the speed lag', async () => {
    const { body } = await get<StatusResponse>('/v1/status', {}, H);
    expect(body.horizon).toBe(toIso(H));
    expect(body.lastBatchRun?.computedTo).toBe(toIso(H));
    expect(body.speed.newestMinute).not.toBeNull();
    expect(body.speed.lagSeconds).toBeGreaterThanOrEqual(0);
  });
});
