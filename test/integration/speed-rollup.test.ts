import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSpeedHandler } from '../../lambdas/speed/handler.js';
import { queryAll } from '../../shared/dynamodb.js';
import { dimensionValue } from '../../shared/event.js';
import { FilterTally } from '../../shared/filters/aggregate.js';
import { admits, parseFilter } from '../../shared/filters/grammar.js';
import { rollupPartitionKey } from '../../shared/keys.js';
import { ROLLUP_MAX_ROWS, tallyRollups } from '../../shared/speed/rollup.js';
import { provision } from '../../local/provision.js';
import { KinesisRecordBuilder } from '../../local/kinesis-records.js';
import { PageViewGenerator } from '../../traffic/generator.js';
import { HOUR_MS, hourBucket } from '../../shared/time.js';
import { DEFAULT_SETTINGS } from '../../shared/resources.js';
import { truthCounts } from '../support/ground-truth.js';
import { isolatedNames, testStack, type TestStack } from './support/stack.js';

const NOW = Date.now();
const START = hourBucket(NOW) - HOUR_MS;

describe('speed layer: rollup blocks for filtered reads', () => {
  let base: TestStack;
  beforeAll(async () => {
    base = await testStack('rollup');
  });
  afterAll(() => base.destroy());

  /** A fresh table, its speed handler, and a read of the rollups of the last two hours under filters. */
  async function setup() {
    const names = isolatedNames('rollup');
    await provision(base.clients, names, { shards: 1 });
    const config = { names, settings: DEFAULT_SETTINGS };
    const speed = createSpeedHandler({ clients: base.clients, config, clock: () => NOW });
    const read = async (filters: string[], by: 'url' | 'country' = 'country') => {
      const tally = new FilterTally({
        filters: filters.map(parseFilter),
        by,
        granularity: 'hour',
        fromMs: START,
        toMs: START + 2 * HOUR_MS,
        visitors: false,
      });
      await tallyRollups(
        { documents: base.clients.documents, tableName: names.tables.speed, clock: () => NOW },
        START,
        START + 2 * HOUR_MS,
        tally,
        DEFAULT_SETTINGS.defaultSite,
      );
      return tally.rows().sort((a, b) => a.bucketMs - b.bucketMs || (a.value < b.value ? -1 : 1));
    };
    return { names, speed, read };
  }

  const traffic = (count: number, seed: number, rate = 2) => {
    const generated = [
      ...new PageViewGenerator({ seed, startMs: START + 50 * 60_000, rate, urlCount: 20 }).take(count),
    ];
    const shard = new KinesisRecordBuilder();
    return {
      events: generated.filter((r) => r.event).map((r) => r.event!),
      records: generated.map((r) => shard.record(r.data, NOW)),
    };
  };

  it('counts each record once when runs of records come again split elsewhere (bisect, a resumed checkpoint)', async () => {
    const { speed, read } = await setup();
    const { events, records } = traffic(120, 3);
    await speed({ Records: records.slice(0, 40) });
    // A retry of part of it, then a batch that starts inside the first and ends inside the next.
    await speed({ Records: records.slice(10, 30) });
    await speed({ Records: records.slice(20, 70) });
    await speed({ Records: records.slice(40, 80) });
    await speed({ Records: records.slice(60, 120) });
    const filter = 'country:US|DE|IN';
    const expected = truthCounts(
      events.filter((e) => admits(parseFilter(filter), dimensionValue(e, 'country'))),
      'country',
      'hour',
    ).map(({ bucketMs, value, count, errors }) => ({ bucketMs, value, count, errors }));
    expect(expected.length).toBeGreaterThan(0);
    expect(await read([filter])).toEqual(expected);
  });

  it('splits a batch larger than a block into blocks of at most ROLLUP_MAX_ROWS records, each an item', async () => {
    const { names, speed, read } = await setup();
    const { events, records } = traffic(ROLLUP_MAX_ROWS + 300, 5, 20);
    await speed({ Records: records });
    const items = await queryAll(base.clients.documents, {
      TableName: names.tables.speed,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': rollupPartitionKey(DEFAULT_SETTINGS.defaultSite, START) },
    });
    const later = await queryAll(base.clients.documents, {
      TableName: names.tables.speed,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': rollupPartitionKey(DEFAULT_SETTINGS.defaultSite, START + HOUR_MS) },
    });
    console.error(
      'SKS',
      [...items, ...later].map((i) => (i.sk as string).slice(-20) + ' n=' + String(i.n)),
    );
    const rows = [...items, ...later].map((item) => item.n as number);
    expect(Math.max(...rows)).toBeLessThanOrEqual(ROLLUP_MAX_ROWS);
    expect(rows.reduce((a, b) => a + b, 0)).toBe(events.length);
    const expected = truthCounts(events, 'url', 'hour').map(({ bucketMs, value, count, errors }) => ({
      bucketMs,
      value,
      count,
      errors,
    }));
    expect(await read(['!url:http://nowhere.example/'], 'url')).toEqual(expected);
  });
});
