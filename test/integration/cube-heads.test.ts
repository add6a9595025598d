import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CubeRows,
  tallyCube,
  tallyHeads,
  updateCubeDay,
  type CubeStoreDeps,
} from '../../shared/batch/cube.js';
import { HEAD_DEPTH } from '../../shared/batch/heads.js';
import { DIMENSIONS, dimensionValue, type PageView } from '../../shared/event.js';
import { BlockBuilder } from '../../shared/filters/block.js';
import { admits, parseFilter } from '../../shared/filters/grammar.js';
import { answerFiltered, type FilteredReaders } from '../../shared/serving/filtered.js';
import { parsePageViewsQuery } from '../../shared/serving/params.js';
import { DEFAULT_SETTINGS } from '../../shared/resources.js';
import { userHash } from '../../shared/sketch/index.js';
import { dayBucket, DAY_MS, HOUR_MS, hourBucket, toIso } from '../../shared/time.js';
import { PageViewGenerator } from '../../traffic/generator.js';
import { testStack, type TestStack } from './support/stack.js';

/**
 * The cube's heads (docs/filters.md): a breakdown under one `is` filter read from the days' heads is the answer the
 * cube's rows give, and the ground truth's, or it is not used: when the heads cannot prove the top values (a top
 * deeper than they list, a flat tail), the cube answers. Days are written as the batch run writes them, one of them
 * in two runs, so its heads are rebuilt from hours read back.
 */

const site = DEFAULT_SETTINGS.defaultSite;
const START = Date.UTC(2026, 10, 18, 6);
const END = START + 2 * DAY_MS;
const events: PageView[] = [
  ...new PageViewGenerator({ seed: 97, startMs: START, rate: 30_000 / (2 * 86_400), urlCount: 3_000 }).take(
    30_000,
  ),
]
  .map((r) => r.event!)
  .filter((e) => e && e.created >= START && e.created < END);

/** The cube rows of some hours' events, one row per page view. */
function cubeRows(hours: readonly number[]): CubeRows {
  const rows = new CubeRows();
  for (const event of events) {
    const hourMs = hourBucket(event.created);
    if (!hours.includes(hourMs)) continue;
    let builder = rows.hours.get(hourMs);
    if (!builder) rows.hours.set(hourMs, (builder = new BlockBuilder()));
    builder.add({ values: DIMENSIONS.map((d) => dimensionValue(event, d)), hash: userHash(event.userId) });
  }
  return rows;
}

describe('filter cube: heads', () => {
  let stack: TestStack;
  let deps: CubeStoreDeps;
  const used = { heads: 0, cube: 0 };
  let readers: FilteredReaders;
  beforeAll(async () => {
    stack = await testStack('cube-heads');
    deps = {
      s3: stack.clients.s3,
      bucket: stack.names.bucket,
      documents: stack.clients.documents,
      tableName: stack.names.tables.batchViews,
    };
    const hours = Array.from({ length: 48 }, (_, i) => START + i * HOUR_MS);
    for (let dayMs = dayBucket(START); dayMs < END; dayMs += DAY_MS) {
      const day = hours.filter((h) => dayBucket(h) === dayMs);
      // The middle day in two runs: its heads are rebuilt with the first run's hours read back.
      const runs = day.length === 24 ? [day.slice(0, 10), day.slice(10)] : [day];
      for (const run of runs) await updateCubeDay(deps, dayMs, run, cubeRows(run), site);
    }
    readers = {
      speed: async () => {},
      batch: async (s, fromMs, toMs, tally) => {
        used.cube += 1;
        await tallyCube(deps, fromMs, toMs, tally, s);
      },
      heads: async (s, fromMs, toMs, tally, serve) => {
        const bound = await tallyHeads(deps, fromMs, toMs, tally, s, serve);
        if (bound) used.heads += 1;
        return bound;
      },
    };
  });
  afterAll(() => stack.destroy());

  const horizon = {
    horizonMs: END,
    version: 'heads',
    publishedAtMs: END,
    computedFromMs: START,
    computedToMs: END,
  };
  const ask = (params: Record<string, string>, filters: string[], heads: FilteredReaders) =>
    answerFiltered(heads, parsePageViewsQuery(params, 0, END, undefined, filters), horizon);

  it('answers a breakdown under one filter as the cube and the ground truth do, or leaves it to the cube', async () => {
    const proven = { yes: 0, no: 0 };
    const { heads: _, ...cubeOnly } = readers;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constantFrom('US', 'DE', 'IN', 'GB', 'ZZ').map((c) => `country:${c}`),
          fc.subarray(['US', 'DE', 'IN', 'GB'], { minLength: 2 }).map((cs) => `country:${cs.join('|')}`),
          fc.constantFrom('CH', 'FF', 'SF').map((b) => `browser:${b}`),
          fc.constantFrom('mobile', 'desktop').map((d) => `device:${d}`),
          fc.constantFrom('200', '404', '500').map((s) => `status:${s}`),
        ),
        fc.integer({ min: 0, max: 47 }),
        fc.integer({ min: 1, max: 48 }),
        fc.constantFrom(1, 5, 10, 40, 100),
        fc.constantFrom('hour', 'day'),
        fc.constantFrom('pageviews', 'pageviews,errors,error_rate'),
        async (filter, first, length, top, granularity, metrics) => {
          const fromMs = START + first * HOUR_MS;
          const toMs = Math.min(END, fromMs + length * HOUR_MS);
          const params = {
            from: toIso(granularity === 'day' ? dayBucket(fromMs) : fromMs),
            to: toIso(granularity === 'day' ? dayBucket(toMs - 1) + DAY_MS : toMs),
            granularity,
            by: 'url',
            top: String(top),
            metrics,
          };
          const before = { ...used };
          const answer = await ask(params, [filter], readers);
          if (used.heads > before.heads && used.cube === before.cube) proven.yes += 1;
          else if (used.heads > before.heads) proven.no += 1;
          expect(answer).toEqual(await ask(params, [filter], cubeOnly));
          // The ground truth: the top values and their totals, ties by value.
          const parsed = parseFilter(filter);
          const range = parsePageViewsQuery(params, 0, END);
          const totals = new Map<string, number>();
          for (const e of events)
            if (
              e.created >= range.fromMs &&
              e.created < range.toMs &&
              admits(parsed, dimensionValue(e, parsed.dimension))
            )
              totals.set(e.url, (totals.get(e.url) ?? 0) + 1);
          const truth = [...totals].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, top);
          expect(answer.breakdown!.filter((b) => b.value !== 'other').map((b) => [b.value, b.total])).toEqual(
            truth,
          );
        },
      ),
      { numRuns: 60, seed: 2711 },
    );
    // Both ways were taken: heads that proved their answer, and heads that left it to the cube.
    expect(proven.yes).toBeGreaterThan(0);
    expect(proven.no).toBeGreaterThan(0);
  });

  it('lists at most HEAD_DEPTH values per day, so a deep top is left to the cube', async () => {
    const before = { ...used };
    const params = { from: toIso(START), to: toIso(END), granularity: 'hour', by: 'url', top: '100' };
    const answer = await ask(params, ['country:US'], readers);
    expect(answer.breakdown!.length).toBe(101);
    expect(HEAD_DEPTH).toBeLessThan(3_000);
    expect(used.heads - before.heads).toBe(1);
    expect(used.cube - before.cube).toBe(1);
  });
});
