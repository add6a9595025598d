import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KinesisStreamRecord } from 'aws-lambda';
import { createApiHandler } from '../../lambdas/api/handler.js';
import { readersFor } from '../../shared/serving/readers.js';
import { createSpeedHandler } from '../../lambdas/speed/handler.js';
import type { PageViewsResponse } from '../../shared/api-types.js';
import {
  DIMENSIONS,
  dimensionValue,
  encodePageView,
  type Dimension,
  type PageView,
} from '../../shared/event.js';
import { DEFAULT_SETTINGS, type RuntimeConfig } from '../../shared/resources.js';
import { floorTo, GRANULARITY_MS, HOUR_MS, hourBucket, type Granularity } from '../../shared/time.js';
import { provision } from '../../local/provision.js';
import { expectExactAnswer } from '../support/expected-answer.js';
import {
  admits,
  CONTAINS_DIMENSIONS,
  formatFilter,
  parseFilter,
  type Filter,
} from '../../shared/filters/grammar.js';
import { apiEvent } from '../../local/api-events.js';
import { KinesisRecordBuilder } from '../../local/kinesis-records.js';
import { landAndRunBatch } from './support/master.js';
import { isolatedNames, testStack, type TestStack } from './support/stack.js';

/**
 * Property (filters, docs/filters.md): for random events (late ones, invalid ones, batches the transport delivers
 * twice, runs of records delivered again in another split, as a bisect or a resumed checkpoint does), a random
 * horizon, a random query and random filters on any dimension (is, is any of, is not, contains), the speed layer's
 * rollup blocks + the batch layer's cube + the merge answer exactly what the valid events that pass the filters say.
 */

const NOW = Date.now();
const WINDOW_START = hourBucket(NOW) - 30 * HOUR_MS;
const WINDOW_END = hourBucket(NOW) + HOUR_MS;
const settings = { ...DEFAULT_SETTINGS, firehoseBufferSeconds: 60 };

const eventArb = fc.record({
  // Half of them in the last three hours, so that an hour's blocks overlap when runs are delivered again.
  created: fc.oneof(
    fc.integer({ min: WINDOW_START, max: NOW - 1000 }),
    fc.integer({ min: NOW - 3 * HOUR_MS, max: NOW - 1000 }),
  ),
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
});
const payloadArb = fc.oneof(
  {
    weight: 10,
    arbitrary: eventArb.map((e) => ({ event: e as PageView, bytes: encodePageView(e as PageView) })),
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
  // Often close to now, so that the speed part holds the recent, overlapping runs.
  horizonHoursBack: fc.oneof(fc.integer({ min: 1, max: 29 }), fc.integer({ min: 1, max: 3 })),
  granularity: fc.constantFrom<Granularity>('minute', 'hour', 'day'),
  span: fc.integer({ min: 1, max: 40 }),
  offset: fc.nat(),
  fromEnd: fc.boolean(),
  by: fc.option(fc.constantFrom(...DIMENSIONS), { nil: undefined }),
  top: fc.integer({ min: 1, max: 6 }),
  resplit: fc.array(fc.record({ start: fc.nat(), length: fc.integer({ min: 1, max: 30 }) }), {
    maxLength: 3,
  }),
  filters: fc.array(
    fc.record({
      dimension: fc.constantFrom(...DIMENSIONS),
      op: fc.constantFrom('is', 'any', 'not', 'contains'),
      picks: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
      cut: fc.nat(),
    }),
    { minLength: 1, maxLength: 3 },
  ),
});

type FilterSpec = { dimension: Dimension; op: string; picks: number[]; cut: number };

/** A filter from its drawn shape, naming values the events hold (and one they do not, when a pick says so). */
function filterOf(spec: FilterSpec, events: readonly PageView[]): Filter {
  const known = [...new Set(events.map((e) => dimensionValue(e, spec.dimension)))].sort();
  const valueOf = (pick: number) =>
    pick % (known.length + 1) === known.length
      ? spec.dimension === 'status'
        ? '418'
        : 'absent'
      : known[pick % (known.length + 1)]!;
  const escape = (v: string) => v.replace(/[\\|]/g, (c) => `\\${c}`);
  if (spec.op === 'contains' && CONTAINS_DIMENSIONS.includes(spec.dimension)) {
    const value = valueOf(spec.picks[0]!);
    const from = spec.cut % value.length;
    return parseFilter(`${spec.dimension}~${value.slice(from, from + 1 + (spec.cut % 5)) || value}`);
  }
  const values = (spec.op === 'any' ? spec.picks : spec.picks.slice(0, 1)).map(valueOf).map(escape);
  return parseFilter(`${spec.op === 'not' ? '!' : ''}${spec.dimension}:${values.join('|')}`);
}

describe('filtered answers: rollups + cube + merge against the ground truth', () => {
  let base: TestStack;
  beforeAll(async () => {
    base = await testStack('property');
  });
  afterAll(() => base.destroy());

  it('answers every random filtered query exactly', async () => {
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
        let delivered = 0;
        for (const [i, batch] of batches.entries()) {
          await speed({ Records: batch });
          delivered += batch.length;
          for (const r of scenario.redeliver) if (r % batches.length === i) await speed({ Records: batch });
          // A run of records already delivered, again, split where no batch was: what a bisect or a resume does.
          for (const { start, length } of scenario.resplit) {
            if (start % batches.length !== i) continue;
            const from = start % delivered;
            await speed({ Records: records.slice(from, Math.min(delivered, from + length)) });
          }
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
        // Anchored at the start of the window or at its end (where the speed part and its overlapping runs are).
        const last = floorTo(WINDOW_END - 1, scenario.granularity) + size;
        const startAnchored = earliest + (scenario.offset % Math.max(1, buckets - 1)) * size;
        const endAnchored = Math.max(earliest, last - (scenario.offset % 3) * size - scenario.span * size);
        const from = scenario.fromEnd ? endAnchored : startAnchored;
        const to = Math.min(from + scenario.span * size, last);
        const api = createApiHandler({
          ...readersFor(clients, config),
          retentionHours: settings.speedRetentionHours,
          clock: () => NOW,
        });
        const query: Record<string, string> = {
          from: String(from),
          to: String(to),
          granularity: scenario.granularity,
          metrics: 'visitors,errors,error_rate',
        };
        if (scenario.by) Object.assign(query, { by: scenario.by, top: String(scenario.top) });
        const everyValid = scenario.payloads.filter((p) => p.event).map((p) => p.event!);
        const filters = scenario.filters.map((spec) => filterOf(spec as FilterSpec, everyValid));
        const event = apiEvent('/v1/pageviews', query);
        const search = new URLSearchParams(event.rawQueryString);
        for (const filter of filters) search.append('filter', formatFilter(filter));
        const result = await api({ ...event, rawQueryString: search.toString() });
        expect(result.statusCode, result.body).toBe(200);
        const body = JSON.parse(result.body!) as PageViewsResponse;
        expect(body.query.filters).toEqual(filters.map(formatFilter));

        const valid = everyValid.filter((e) =>
          filters.every((f) => admits(f, dimensionValue(e, f.dimension))),
        );
        expectExactAnswer(body, valid, scenario, from, to);
      }),
      { numRuns: 20 },
    );
  });
});
