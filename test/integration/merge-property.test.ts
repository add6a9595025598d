import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KinesisStreamRecord } from 'aws-lambda';
import { createApiHandler } from '../../lambdas/api/handler.js';
import { readersFor } from '../../shared/serving/readers.js';
import { createSpeedHandler } from '../../lambdas/speed/handler.js';
import type { PageViewsResponse } from '../../shared/api-types.js';
import { DIMENSIONS, encodePageView, type PageView } from '../../shared/event.js';
import { DEFAULT_SETTINGS, stackSites, type RuntimeConfig } from '../../shared/resources.js';
import { floorTo, GRANULARITY_MS, HOUR_MS, hourBucket, type Granularity } from '../../shared/time.js';
import { provision } from '../../local/provision.js';
import { apiEvent } from '../../local/api-events.js';
import { KinesisRecordBuilder } from '../../local/kinesis-records.js';
import { expectExactAnswer } from '../support/expected-answer.js';
import { landAndRunBatch } from './support/master.js';
import { isolatedNames, testStack, type TestStack } from './support/stack.js';

/**
 * Property: for random events (late ones, invalid ones, batches the transport delivers twice), a random
 * horizon and a random query, speed + batch + merge answer exactly what the valid events say.
 */

const NOW = Date.now();
const WINDOW_START = hourBucket(NOW) - 30 * HOUR_MS;
const WINDOW_END = hourBucket(NOW) + HOUR_MS;
/** Three sites: the default one (events that name none) and two that producers name. */
const NAMED_SITES = ['a.example', 'b.example'];
const settings = { ...DEFAULT_SETTINGS, firehoseBufferSeconds: 60, sites: NAMED_SITES };
const SITES = stackSites(settings);

const eventArb = fc.record({
  created: fc.integer({ min: WINDOW_START, max: NOW - 1000 }),
  url: fc.constantFrom(...Array.from({ length: 8 }, (_, i) => `http://a.example/${i}`)),
  status: fc.constantFrom(200, 404, 500),
  country: fc.constantFrom('US', 'DE', 'IN', 'ZZ'),
  browser: fc.constantFrom('CH', 'FF'),
  userId: fc.constantFrom('1', '2', '3', '4', '5', '6', '7'),
  // The sources issue's fields: a referrer (the site's own host among them), a campaign, device and system.
  referrer: fc.option(fc.constantFrom('a.example', 'google.com', 't.co', 'blog.b.example'), {
    nil: undefined,
  }),
  utmSource: fc.option(fc.constantFrom('newsletter', 'Launch Week'), { nil: undefined }),
  utmMedium: fc.option(fc.constantFrom('email', 'social'), { nil: undefined }),
  utmCampaign: fc.option(fc.constantFrom('spring_sale', '\u{1F600} sale'), { nil: undefined }),
  device: fc.option(fc.constantFrom('desktop', 'mobile', 'tablet', 'other'), { nil: undefined }),
  os: fc.option(fc.constantFrom('Windows', 'iOS'), { nil: undefined }),
  // No site: the stack's default one.
  site: fc.option(fc.constantFrom(...NAMED_SITES), { nil: undefined }),
});
const payloadArb = fc.oneof(
  {
    weight: 10,
    arbitrary: eventArb.map((e) => ({
      event: { ...e, site: e.site ?? settings.defaultSite } as PageView,
      bytes: encodePageView(e as PageView),
    })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('{"broken', '{"created":1}', '[]')
      .map((bytes) => ({ event: undefined, bytes })),
  },
);
const scenarioArb = fc.record({
  payloads: fc.array(payloadArb, { minLength: 1, maxLength: 60 }),
  batchSize: fc.integer({ min: 1, max: 25 }),
  redeliver: fc.array(fc.nat(), { maxLength: 3 }),
  horizonHoursBack: fc.integer({ min: 1, max: 29 }),
  granularity: fc.constantFrom<Granularity>('minute', 'hour', 'day'),
  span: fc.integer({ min: 1, max: 40 }),
  offset: fc.nat(),
  by: fc.option(fc.constantFrom(...DIMENSIONS), { nil: undefined }),
  top: fc.integer({ min: 1, max: 6 }),
});

describe('speed + batch + merge against the ground truth', () => {
  let base: TestStack;
  beforeAll(async () => {
    base = await testStack('property');
  });
  afterAll(() => base.destroy());

  it('answers every random query exactly', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        const names = isolatedNames('prop');
        await provision(base.clients, names, { shards: 1 });
        const config: RuntimeConfig = { names, settings };
        const clients = base.clients;

        // Speed layer: Kinesis batches, some delivered twice by the transport.
        const shard = new KinesisRecordBuilder();
        const records: KinesisStreamRecord[] = scenario.payloads.map((p) => shard.record(p.bytes, NOW));
        const speed = createSpeedHandler({ clients, config, clock: () => NOW });
        const batches: KinesisStreamRecord[][] = [];
        for (let i = 0; i < records.length; i += scenario.batchSize)
          batches.push(records.slice(i, i + scenario.batchSize));
        for (const [i, batch] of batches.entries()) {
          await speed({ Records: batch });
          for (const r of scenario.redeliver) if (r % batches.length === i) await speed({ Records: batch });
        }

        // Master dataset as Firehose lands it, then the batch layer, run at a time that publishes the chosen horizon.
        const horizon = hourBucket(NOW) - scenario.horizonHoursBack * HOUR_MS;
        const run = await landAndRunBatch(clients, config, records, NOW, horizon);
        expect(run.horizon?.horizonMs).toBe(horizon);

        // A random aligned query.
        const size = GRANULARITY_MS[scenario.granularity];
        const earliest =
          scenario.granularity === 'minute'
            ? hourBucket(NOW) - 20 * HOUR_MS
            : floorTo(WINDOW_START, scenario.granularity);
        const buckets = Math.floor((WINDOW_END - earliest) / size);
        const from = earliest + (scenario.offset % Math.max(1, buckets - 1)) * size;
        const to = Math.min(
          from + scenario.span * size,
          floorTo(WINDOW_END - 1, scenario.granularity) + size,
        );
        const api = createApiHandler({
          ...readersFor(clients, config),
          retentionHours: settings.speedRetentionHours,
          sites: SITES,
          clock: () => NOW,
        });
        const all = scenario.payloads.filter((p) => p.event).map((p) => p.event!);
        // Every site's answer is exact against that site's events alone: none of another's appear in it.
        let everySite = 0;
        for (const site of SITES) {
          const query: Record<string, string> = {
            site,
            from: String(from),
            to: String(to),
            granularity: scenario.granularity,
            metrics: 'visitors,errors,error_rate',
          };
          if (scenario.by) Object.assign(query, { by: scenario.by, top: String(scenario.top) });
          const result = await api(apiEvent('/v1/pageviews', query));
          expect(result.statusCode, result.body).toBe(200);
          const body = JSON.parse(result.body!) as PageViewsResponse;

          const valid = all.filter((e) => e.site === site);
          expect(body.query.site).toBe(site);
          everySite += body.total;
          expectExactAnswer(body, valid, scenario, from, to);
        }
        // The sites partition the events: their answers add up to every valid event of the range.
        expect(everySite).toBe(all.filter((e) => e.created >= from && e.created < to).length);
      }),
      { numRuns: 25 },
    );
  });
});
