import { describe, expect, it } from 'vitest';
import {
  countingStoreRequests,
  plannedStoreRequests,
  STORE_REQUEST_CEILING,
} from '../../shared/serving/budget.js';
import { createApiHandler, type AnsweredRequest } from '../../lambdas/api/handler.js';
import { parsePageViewsQuery, QUERY_LIMITS } from '../../shared/serving/params.js';
import type { ErrorResponse } from '../../shared/api-types.js';
import type { HorizonState, SpeedCountReader } from '../../shared/counts.js';
import { DAY_MS, HOUR_MS, toIso } from '../../shared/time.js';
import { apiEvent } from '../../local/api-events.js';
import { memoryBatchReader, memorySpeedReader } from '../support/memory-readers.js';

const NOW = Date.UTC(2026, 10, 25, 15, 20);
const H = Date.UTC(2026, 10, 25, 13);
const horizon: HorizonState = {
  horizonMs: H,
  version: 'v',
  publishedAtMs: H,
  computedFromMs: H,
  computedToMs: H,
};

async function call(speed: SpeedCountReader, query: Record<string, string>) {
  const answered: AnsweredRequest[] = [];
  const api = createApiHandler({
    speed,
    batch: memoryBatchReader([], H),
    retentionHours: 48,
    clock: () => NOW,
    onAnswered: (request) => answered.push(request),
  });
  const result = await api(apiEvent('/v1/pageviews', query));
  return { status: result.statusCode, body: JSON.parse(result.body!) as ErrorResponse, answered };
}

describe('bounded queries', () => {
  it('refuses a `to` more than a day after now with range_in_future, before any read', async () => {
    const far = await call(memorySpeedReader([]), {
      from: toIso(Date.UTC(2026, 10, 25)),
      to: toIso(Date.UTC(2026, 10, 25) + 1500 * DAY_MS),
      granularity: 'day',
      by: 'url',
      top: '100',
    });
    expect(far.status).toBe(400);
    expect(far.body.error).toMatchObject({ code: 'range_in_future', parameter: 'to' });
    expect(far.answered).toEqual([expect.objectContaining({ statusCode: 400, storeRequests: 0 })]);
    // A day ahead is still a range a dashboard may ask for.
    const next = await call(memorySpeedReader([]), {
      from: toIso(Date.UTC(2026, 10, 25)),
      to: toIso(NOW - (NOW % HOUR_MS) + QUERY_LIMITS.maxFutureMs),
    });
    expect(next.status).toBe(200);
  });

  it('plans the fewest store requests of a query: the horizon, speed hours per dimension, batch partitions and day heads', () => {
    const plan = (params: Record<string, string>) =>
      plannedStoreRequests(parsePageViewsQuery(params, 0, NOW), horizon);
    // 3 speed hours (13:00 to 16:00) of the total: 1 + 3.
    expect(plan({ from: toIso(H), to: toIso(H + 3 * HOUR_MS) })).toBe(4);
    // With a breakdown: 3 hours of two dimensions, and two days of batch totals, one month of manifests and
    // the two days' ranked heads.
    expect(plan({ from: toIso(H - DAY_MS), to: toIso(H + 3 * HOUR_MS), by: 'url' })).toBe(1 + 6 + 2 + 1 + 2);
    // 1,500 days by url with visitors: more than the ceiling.
    const from = toIso(Date.UTC(2026, 10, 26) - 1500 * DAY_MS);
    const query = { from, to: toIso(Date.UTC(2026, 10, 26)), granularity: 'day', by: 'url' };
    expect(plan({ ...query, metrics: 'visitors' })).toBeGreaterThan(STORE_REQUEST_CEILING);
    expect(plan(query)).toBeLessThan(STORE_REQUEST_CEILING);
  });

  it('answers a query whose plan passes the ceiling with request_too_large naming what to narrow, before any read', async () => {
    const from = toIso(Date.UTC(2026, 10, 26) - 1500 * DAY_MS);
    const query = {
      from,
      to: toIso(Date.UTC(2026, 10, 26)),
      granularity: 'day',
      by: 'url',
      metrics: 'visitors',
    };
    const refused = await call(memorySpeedReader([]), query);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({
      code: 'request_too_large',
      parameters: ['from', 'to', 'by', 'metrics'],
    });
    expect(refused.body.error.message).toContain(`at most ${STORE_REQUEST_CEILING}`);
    const { metrics: _visitors, ...narrower } = query;
    expect((await call(memorySpeedReader([]), narrower)).status).toBe(200);
  });

  it('stops a query that reaches the ceiling while it runs, and logs what each request made', async () => {
    // A speed reader whose reads go deeper than any plan: one store request per page it would read.
    const deep = (pages: number): SpeedCountReader => ({
      readCounts: async () => {
        for (let page = 0; page < pages; page += 1) countingStoreRequests()();
        return [];
      },
      newestMinute: async () => undefined,
      minuteSpan: async () => undefined,
    });
    const query = { from: toIso(H), to: toIso(H + HOUR_MS), granularity: 'minute', by: 'url' };
    const stopped = await call(deep(5000), query);
    expect(stopped.status).toBe(400);
    expect(stopped.body.error).toMatchObject({ code: 'request_too_large', parameters: ['from', 'to', 'by'] });
    // Stopped at the ceiling: each of the two reads in flight stops at its next request past it.
    expect(stopped.answered[0]!.storeRequests).toBeGreaterThan(STORE_REQUEST_CEILING);
    expect(stopped.answered[0]!.storeRequests).toBeLessThanOrEqual(STORE_REQUEST_CEILING + 2);
    const fine = await call(deep(40), query);
    expect(fine.status).toBe(200);
    // The two speed reads (total and url) of 40 pages each.
    expect(fine.answered).toEqual([
      expect.objectContaining({ path: '/v1/pageviews', statusCode: 200, storeRequests: 80 }),
    ]);
  });
});
