import { DEFAULT_SETTINGS } from '../../shared/resources.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { PageView } from '../../shared/event.js';
import { generatedSites, PageViewGenerator } from '../../traffic/generator.js';
import type { SitesResponse } from '../../shared/api-types.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { DAY_MS, HOUR_MS, hourBucket, MINUTE_MS, minuteBucket, toIso } from '../../shared/time.js';
import { createSpeedReader } from '../../shared/speed/reader.js';
import { startLocalStack, type LocalStack } from '../../local/stack.js';
import { splitResends, truthCounts } from '../support/ground-truth.js';
import { expectVisitors } from '../support/sketch.js';
import { getPageViews, isolatedNames } from './support/stack.js';
import { dimensionValue } from '../../shared/event.js';
import type { PageViewsResponse } from '../../shared/api-types.js';

describe('end to end: generator → Kinesis → speed + Firehose → batch → API over HTTP', () => {
  let stack: LocalStack;
  const now = Date.now();
  const from = hourBucket(now) - 3 * HOUR_MS;
  let events: PageView[] = [];
  let resends: PageView[] = [];
  /** Traffic of three sites, each with its sources and devices; the default site gets only the late events. */
  const SITES = generatedSites(3);
  const DEFAULT_SITE = DEFAULT_SETTINGS.defaultSite;

  beforeAll(async () => {
    stack = await startLocalStack({
      emulators: inject('emulators'),
      names: isolatedNames('e2e'),
      shards: 2,
      runBatchAtStart: false,
      batchIntervalMs: 3_600_000,
      settings: { sites: SITES },
    });
    // Three hours up to a minute ago, with malformed records and producer re-sends mixed in.
    const count = 900;
    const generator = new PageViewGenerator({
      seed: 42,
      startMs: from,
      rate: count / ((now - 60_000 - from) / 1000),
      malformedFraction: 0.05,
      duplicateFraction: 0.02,
      sites: SITES,
    });
    const records = [...generator.take(count)];
    ({ events, resends } = splitResends(records));
    expect(resends.length).toBeGreaterThan(5);
    await putRecordsReliably(stack.clients.kinesis, stack.config.names.stream, records);
    await stack.esm.drain();
  });
  afterAll(async () => stack?.stop());

  const pageViews = (query: Record<string, string>) => getPageViews(stack.apiUrl, query);

  /**
   * Exact against the distinct events, except that a re-send landing in another batch than its original is
   * counted again by the speed layer until the batch layer covers its hour (the batch layer counts it once).
   */
  function expectCount(actual: number, distinct: number, withResends: number, servedBySpeed: boolean) {
    if (servedBySpeed) {
      expect(actual).toBeGreaterThanOrEqual(distinct);
      expect(actual).toBeLessThanOrEqual(withResends);
    } else {
      expect(actual).toBe(distinct);
    }
  }

  /** Each site's answers are exact against its own events: none of another site's appear in them. */
  async function expectTruth(expectedHorizon: number | null) {
    const answers = [];
    for (const [i, site] of SITES.entries()) {
      answers.push(
        await expectSiteTruth(
          site,
          // A dimension per site: the event model's first one, a source and a device.
          (['browser', 'source', 'device'] as const)[i]!,
          events.filter((e) => e.site === site),
          resends.filter((e) => e.site === site),
          expectedHorizon,
        ),
      );
    }
    // The sites partition the traffic: their totals add up to every event, and each has some.
    const totals = answers.map((a) => a.total);
    expect(totals.every((t) => t > 0)).toBe(true);
    expectCount(
      totals.reduce((a, b) => a + b, 0),
      events.length,
      events.length + resends.length,
      answers.some((a) => a.buckets.some((b) => b.source !== 'batch')),
    );
    return answers[0]!;
  }

  async function expectSiteTruth(
    site: string,
    by: 'browser' | 'source' | 'device',
    events: PageView[],
    resends: PageView[],
    expectedHorizon: number | null,
  ) {
    const to = hourBucket(now) + HOUR_MS;
    const pageViews = (query: Record<string, string>) => getPageViews(stack.apiUrl, { site, ...query });
    const hourly = await pageViews({
      from: toIso(from),
      to: toIso(to),
      granularity: 'hour',
      by,
      top: '100',
    });
    expect(hourly.query.site).toBe(site);
    expect(hourly.horizon).toBe(expectedHorizon === null ? null : toIso(expectedHorizon));
    const range = { fromMs: from, toMs: to };
    const distinct = truthCounts(events, 'total', 'hour', range);
    const withResends = truthCounts([...events, ...resends], 'total', 'hour', range);
    // Every hour of the range is a bucket, also one without events (in the first minutes of an hour, the
    // current hour has none yet).
    const hours = Array.from({ length: (to - from) / HOUR_MS }, (_, i) => from + i * HOUR_MS);
    expect(hourly.buckets.map((b) => b.start)).toEqual(hours.map(toIso));
    const countIn = (rows: typeof distinct, bucketMs: number) =>
      rows.find((r) => r.bucketMs === bucketMs)?.count ?? 0;
    hourly.buckets.forEach((bucket, i) =>
      expectCount(
        bucket.count,
        countIn(distinct, hours[i]!),
        countIn(withResends, hours[i]!),
        bucket.source !== 'batch',
      ),
    );
    const speedServed = hourly.buckets.some((b) => b.source !== 'batch');
    expectCount(hourly.total, events.length, events.length + resends.length, speedServed);
    for (const value of hourly.breakdown!) {
      const sum = (list: PageView[]) =>
        truthCounts(list, by, 'hour', range)
          .filter((r) => r.value === value.value)
          .reduce((total, r) => total + r.count, 0);
      expectCount(value.total, sum(events), sum([...events, ...resends]), speedServed);
    }
    const dayFrom = Math.floor(from / DAY_MS) * DAY_MS;
    const daily = await pageViews({
      from: toIso(dayFrom),
      to: toIso(Math.floor(now / DAY_MS) * DAY_MS + DAY_MS),
      granularity: 'day',
    });
    expectCount(daily.total, events.length, events.length + resends.length, speedServed);

    // Visitors are unions of sketches, so re-sends (same user) cannot inflate them even in the speed layer;
    // error rates are exact wherever the batch layer serves.
    const metrics = await pageViews({
      from: toIso(from),
      to: toIso(to),
      granularity: 'hour',
      metrics: 'visitors,error_rate',
    });
    const users = (list: PageView[]) => new Set(list.map((e) => e.userId)).size;
    expectVisitors(metrics.visitors, users(events.filter((e) => e.created >= from && e.created < to)));
    for (const bucket of metrics.buckets) {
      const inBucket = events.filter(
        (e) => e.created >= Date.parse(bucket.start) && e.created < Date.parse(bucket.end),
      );
      expectVisitors(bucket.visitors, users(inBucket), `visitors of ${bucket.start}`);
      if (bucket.source === 'batch' && inBucket.length > 0)
        expect(bucket.errorRate).toBe(inBucket.filter((e) => e.status >= 400).length / inBucket.length);
    }
    return hourly;
  }

  /**
   * A filtered breakdown over HTTP (docs/filters.md): the top urls of visitors from the US or Germany not on
   * Firefox, per hour, from the cube before H and the rollup blocks after it; exact where the batch layer serves,
   * and within the re-sends where the speed layer does (as every speed answer).
   */
  async function expectFilteredBreakdown() {
    const to = hourBucket(now) + HOUR_MS;
    // One site's filtered answer, against that site's events alone.
    const site = SITES[0]!;
    const search = new URLSearchParams({
      site,
      from: toIso(from),
      to: toIso(to),
      granularity: 'hour',
      by: 'url',
      top: '5',
    });
    search.append('filter', 'country:US|DE');
    search.append('filter', '!browser:FF');
    const response = await fetch(`${stack.apiUrl}/v1/pageviews?${search}`);
    expect(response.status).toBe(200);
    const answer = (await response.json()) as PageViewsResponse;
    expect(answer.query.filters).toEqual(['country:DE|US', '!browser:FF']);
    const passes = (e: PageView) => ['US', 'DE'].includes(e.country) && e.browser !== 'FF';
    const range = { fromMs: from, toMs: to };
    const ofSite = (e: PageView) => e.site === site && passes(e);
    const distinct = events.filter(ofSite);
    const all = [...events, ...resends].filter(ofSite);
    answer.buckets.forEach((bucket) => {
      const start = Date.parse(bucket.start);
      const inBucket = (list: PageView[]) => list.filter((e) => hourBucket(e.created) === start).length;
      expectCount(bucket.count, inBucket(distinct), inBucket(all), bucket.source !== 'batch');
    });
    const speedServed = answer.buckets.some((b) => b.source !== 'batch');
    const inRange = (list: PageView[]) => list.filter((e) => e.created >= from && e.created < to);
    expectCount(answer.total, inRange(distinct).length, inRange(all).length, speedServed);
    expect(answer.breakdown!.reduce((sum, b) => sum + b.total, 0)).toBe(answer.total);
    for (const value of answer.breakdown!.filter((b) => b.value !== 'other')) {
      const of = (list: PageView[]) =>
        truthCounts(list, 'url', 'hour', range)
          .filter((r) => r.value === value.value)
          .reduce((total, r) => total + r.count, 0);
      expectCount(value.total, of(distinct), of(all), speedServed);
      expect(inRange(distinct).some((e) => dimensionValue(e, 'url') === value.value)).toBe(true);
    }
    return answer;
  }

  it('answers from the speed layer alone before any batch run', async () => {
    const answer = await expectTruth(null);
    expect(answer.buckets.every((b) => b.source === 'speed')).toBe(true);
    const filtered = await expectFilteredBreakdown();
    expect(filtered.buckets.every((b) => b.source === 'speed')).toBe(true);
  });

  it('answers the same after a batch run moves H, now serving the hours before H from batch views', async () => {
    await stack.firehose.drain();
    await stack.scheduler.runNow();
    const status = (await (await fetch(`${stack.apiUrl}/v1/status`)).json()) as { horizon: string };
    const horizon = Date.parse(status.horizon);
    expect(horizon).toBeGreaterThan(from);
    const answer = await expectTruth(horizon);
    expect(
      answer.buckets.filter((b) => Date.parse(b.start) < horizon).every((b) => b.source === 'batch'),
    ).toBe(true);
    expect(
      answer.buckets.filter((b) => Date.parse(b.start) >= horizon).every((b) => b.source === 'speed'),
    ).toBe(true);
    const filtered = await expectFilteredBreakdown();
    expect(filtered.horizon).toBe(toIso(horizon));
    expect(filtered.buckets.some((b) => b.source === 'batch')).toBe(true);
  });

  it('breaks down by url across H exactly: the top values from the view store and the speed counters, the rest as other', async () => {
    const horizon = stack.stats().horizon!;
    const to = hourBucket(now) + HOUR_MS;
    const site = SITES[0]!;
    const answer = await pageViews({
      site,
      from: toIso(from),
      to: toIso(to),
      granularity: 'hour',
      by: 'url',
      top: '3',
    });
    // What each layer holds: the batch views are exact before H; after H, what the speed layer counted.
    const speed = createSpeedReader({
      documents: stack.clients.documents,
      tableName: stack.config.names.tables.speed,
      clock: Date.now,
    });
    const rows = [
      ...truthCounts(
        events.filter((e) => e.site === site),
        'url',
        'hour',
        { fromMs: from, toMs: horizon },
      ),
      ...(await speed.readCounts({ site, dimension: 'url', fromMs: horizon, toMs: to, granularity: 'hour' })),
    ];
    const starts = answer.buckets.map((b) => Date.parse(b.start));
    const series = new Map<string, number[]>();
    for (const row of rows) {
      const counts = series.get(row.value) ?? new Array<number>(starts.length).fill(0);
      counts[starts.indexOf(row.bucketMs)]! += row.count;
      series.set(row.value, counts);
    }
    const ranked = [...series.entries()]
      .map(([value, counts]) => ({ value, total: counts.reduce((a, b) => a + b, 0), counts }))
      .sort((a, b) => b.total - a.total || (a.value < b.value ? -1 : 1));
    const other = starts.map((_, i) => ranked.slice(3).reduce((sum, r) => sum + r.counts[i]!, 0));
    expect(answer.breakdown).toEqual([
      ...ranked.slice(0, 3),
      { value: 'other', total: other.reduce((a, b) => a + b, 0), counts: other },
    ]);
    expect(
      answer.buckets.some((b) => b.source === 'batch') && answer.buckets.some((b) => b.source === 'speed'),
    ).toBe(true);
  });

  it('lists the sites with their first and last event, and refuses a query that names none of them', async () => {
    const response = await fetch(`${stack.apiUrl}/v1/sites`);
    expect(response.status).toBe(200);
    const { sites } = (await response.json()) as SitesResponse;
    const horizon = stack.stats().horizon!;
    expect(sites).toEqual(
      [DEFAULT_SITE, ...SITES].map((site) => {
        const times = events.filter((e) => e.site === site).map((e) => e.created);
        const first = Math.min(...times);
        const last = Math.max(...times);
        return times.length === 0
          ? { site, default: false, firstEvent: null, lastEvent: null }
          : {
              site,
              default: false,
              // Before H the batch views know the hour; from H on the speed counters know the minute.
              firstEvent: toIso(first < horizon ? hourBucket(first) : minuteBucket(first)),
              lastEvent: toIso(last < horizon ? hourBucket(last) + HOUR_MS : minuteBucket(last) + MINUTE_MS),
            };
      }),
    );
    const range = { from: toIso(from), to: toIso(now - (now % HOUR_MS)) };
    expect((await fetch(`${stack.apiUrl}/v1/pageviews?${new URLSearchParams(range)}`)).status).toBe(400);
    const unknown = await fetch(
      `${stack.apiUrl}/v1/pageviews?${new URLSearchParams({ ...range, site: 'x.example' })}`,
    );
    expect([unknown.status, ((await unknown.json()) as { error: { code: string } }).error.code]).toEqual([
      400,
      'site_unknown',
    ]);
  });

  it('counts events that arrive 10 hours late on the next batch run, without a rebuild', async () => {
    const horizon = stack.stats().horizon!;
    const lateHour = horizon - 10 * HOUR_MS;
    const late = [...new PageViewGenerator({ seed: 43, startMs: lateHour + 1000, rate: 1 / 30 }).take(50)];
    // Events that name no site: the default site's.
    const query = {
      site: DEFAULT_SITE,
      from: toIso(lateHour),
      to: toIso(lateHour + HOUR_MS),
      granularity: 'hour',
    };
    const before = (await pageViews(query)).total;
    await putRecordsReliably(stack.clients.kinesis, stack.config.names.stream, late);
    await stack.esm.drain();
    await stack.firehose.drain();
    // Before the run, H has passed that hour: the batch views do not have them yet.
    expect((await pageViews(query)).total).toBe(before);
    await stack.scheduler.runNow();
    const after = await pageViews(query);
    expect(after.buckets[0]!.source).toBe('batch');
    expect(after.total).toBe(before + late.length);
    expect(after.total).toBe(
      [...events, ...late.map((r) => r.event!)].filter((e) => hourBucket(e.created) === lateHour).length,
    );
  });
});
