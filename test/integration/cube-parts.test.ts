import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CubeRows, partsOf, tallyCube, updateCubeDay, type CubeStoreDeps } from '../../shared/batch/cube.js';
import { DIMENSIONS, dimensionValue, type Dimension, type PageView } from '../../shared/event.js';
import { FilterTally } from '../../shared/filters/aggregate.js';
import { BlockBuilder } from '../../shared/filters/block.js';
import { admits, parseFilter } from '../../shared/filters/grammar.js';
import { userHash } from '../../shared/sketch/index.js';
import { dayBucket, HOUR_MS, hourBucket } from '../../shared/time.js';
import { PageViewGenerator } from '../../traffic/generator.js';
import { truthCounts } from '../support/ground-truth.js';
import { testStack, type TestStack } from './support/stack.js';

/**
 * The cube's sorted parts (docs/filters.md): a filter on a sorted dimension reads only the parts of its values,
 * with ranged GETs, and every answer is the one the whole hour gives, and the ground truth's.
 */

const DAY = Date.UTC(2026, 10, 20);
const HOURS = [DAY + 9 * HOUR_MS, DAY + 10 * HOUR_MS, DAY + 11 * HOUR_MS];
const events: PageView[] = [
  ...new PageViewGenerator({ seed: 41, startMs: HOURS[0]!, rate: 1 / 4, urlCount: 40 }).take(2_500),
]
  .map((r) => r.event!)
  .filter((e) => e && e.created < HOURS[0]! + 3 * HOUR_MS);

/** Cube rows of the events: one row per page view, as the batch query's `cube` rows group them at most. */
function cubeRows(): CubeRows {
  const rows = new CubeRows();
  for (const event of events) {
    const hourMs = hourBucket(event.created);
    let builder = rows.hours.get(hourMs);
    if (!builder) rows.hours.set(hourMs, (builder = new BlockBuilder()));
    builder.add({ values: DIMENSIONS.map((d) => dimensionValue(event, d)), hash: userHash(event.userId) });
  }
  return rows;
}

describe('filter cube: sorted parts read by filter', () => {
  let stack: TestStack;
  let deps: CubeStoreDeps;
  const reads = { gets: 0, bytes: 0 };
  beforeAll(async () => {
    stack = await testStack('cube-parts');
    deps = {
      s3: stack.clients.s3,
      bucket: stack.names.bucket,
      documents: stack.clients.documents,
      tableName: stack.names.tables.batchViews,
      onRequest: ({ kind, bytes }) => {
        if (kind !== 'get' || bytes === undefined) return;
        reads.gets += 1;
        reads.bytes += bytes;
      },
    };
    // Site `split` is cut into many small parts; site `whole` keeps each hour one part.
    await updateCubeDay(
      { ...deps, partRows: { min: 5, max: 40 } },
      dayBucket(DAY),
      HOURS,
      cubeRows(),
      'split',
    );
    await updateCubeDay(
      { ...deps, partRows: { min: 1e9, max: 1e9 } },
      dayBucket(DAY),
      HOURS,
      cubeRows(),
      'whole',
    );
  });
  afterAll(() => stack.destroy());

  async function tally(site: string, filters: string[], by: Dimension) {
    const t = new FilterTally({
      filters: filters.map(parseFilter),
      by,
      granularity: 'hour',
      fromMs: HOURS[0]!,
      toMs: HOURS[2]! + HOUR_MS,
      visitors: true,
    });
    reads.gets = 0;
    reads.bytes = 0;
    const stats = await tallyCube(deps, HOURS[0]!, HOURS[2]! + HOUR_MS, t, site);
    const rows = t
      .rows()
      .map(({ bucketMs, value, count, errors, visitors }) => ({ bucketMs, value, count, errors, visitors }))
      .sort((a, b) => a.bucketMs - b.bucketMs || (a.value < b.value ? -1 : 1));
    return { rows, stats, reads: { ...reads } };
  }

  it('writes sorted parts whose named values are the only ones they hold', async () => {
    const { stats } = await tally('split', [], 'url');
    expect(stats.parts).toBeGreaterThan(3 * 10);
    const { Item } = await stack.clients.documents.send(
      new (await import('@aws-sdk/lib-dynamodb')).GetCommand({
        TableName: deps.tableName,
        Key: { pk: `cube#split#2026-11`, sk: '2026-11-20' },
      }),
    );
    const parts = partsOf(Item!.hours['10']);
    const countries = parts.map((p) => p.values[0]);
    // Sorted by country: each part names its countries, and a country's parts are adjacent.
    expect(countries.every((c) => c !== undefined)).toBe(true);
    const runs = countries.flatMap((c) => c!).filter((c, i, all) => i === 0 || all[i - 1] !== c);
    expect(new Set(runs).size).toBe(runs.length);
  });

  const filterArbitrary = fc.oneof(
    fc.constantFrom('US', 'DE', 'IN', 'GB', 'FR', 'ZZ').map((c) => `country:${c}`),
    fc.subarray(['US', 'DE', 'IN', 'GB', 'BR'], { minLength: 1 }).map((cs) => `country:${cs.join('|')}`),
    fc.constantFrom('US', 'DE').map((c) => `!country:${c}`),
    fc.constantFrom('CH', 'FF', 'SF', 'ED').map((b) => `browser:${b}`),
    fc.constantFrom('CH', 'FF').map((b) => `!browser:${b}`),
    fc.constantFrom('mobile', 'desktop', 'other').map((d) => `device:${d}`),
    fc.constantFrom('200', '404').map((s) => `status:${s}`),
    fc.constantFrom('/p/1', '/p/2').map((u) => `url~${u}`),
  );

  it('answers every filter as the whole hours and the ground truth do', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(filterArbitrary, { minLength: 1, maxLength: 3 }),
        fc.constantFrom<Dimension>('url', 'country', 'browser', 'device'),
        async (filters, by) => {
          const split = await tally('split', filters, by);
          const whole = await tally('whole', filters, by);
          expect(split.rows).toEqual(whole.rows);
          const parsed = filters.map(parseFilter);
          const admitted = events.filter((e) =>
            parsed.every((f) => admits(f, dimensionValue(e, f.dimension))),
          );
          const truth = truthCounts(admitted, by, 'hour').map(({ bucketMs, value, count, errors }) => ({
            bucketMs,
            value,
            count,
            errors,
          }));
          expect(
            split.rows.map(({ bucketMs, value, count, errors }) => ({ bucketMs, value, count, errors })),
          ).toEqual(truth.sort((a, b) => a.bucketMs - b.bucketMs || (a.value < b.value ? -1 : 1)));
        },
      ),
      { numRuns: 25, seed: 27 },
    );
  });

  it('reads a country filter with ranged GETs of its parts only', async () => {
    const all = await tally('whole', ['country:DE'], 'url');
    const split = await tally('split', ['country:DE'], 'url');
    expect(split.rows).toEqual(all.rows);
    expect(split.stats.partsSkipped).toBeGreaterThan(0);
    // At most two ranges per hour, and far fewer bytes than the whole hours.
    expect(split.reads.gets).toBeLessThanOrEqual(2 * HOURS.length);
    expect(split.reads.bytes * 3).toBeLessThan(all.reads.bytes);
  });
});
