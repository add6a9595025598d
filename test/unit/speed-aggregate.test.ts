import { describe, expect, it } from 'vitest';
import { aggregateBatch, type Cell } from '../../shared/speed/aggregate.js';
import {
  buildUpdate,
  cellWriteLimits,
  DEFAULT_CELL_WRITE_LIMITS,
  GenerationCache,
  indexAbove,
  longestUpdateExpressionBytes,
  MAX_EXPRESSION_BYTES,
  plannedUpdates,
  planUpdate,
} from '../../shared/speed/cell-writer.js';
import { DIMENSIONS, EVENT_LIMITS } from '../../shared/event.js';
import { urlOfBytes } from '../../traffic/hostile.js';
import { valueDigest } from '../../shared/keys.js';
import {
  expiresAtFor,
  padSequence,
  speedGenerationPrefix,
  VALUE_BUCKETS,
  valueBucket,
  WRITE_WINDOW_SECONDS,
} from '../../shared/speed/table.js';
import { HOUR_MS } from '../../shared/time.js';
import { aPageView } from '../support/builders.js';
import { KinesisRecordBuilder } from '../../local/kinesis-records.js';

const T = Date.UTC(2026, 10, 25, 12, 30, 15);

describe('aggregating a batch into counter cells', () => {
  it('makes one cell per minute and dimension, holding every record of it in order with its value', () => {
    const shard = new KinesisRecordBuilder();
    const records = [
      shard.record(aPageView({ created: T, country: 'US' }), T),
      shard.record(aPageView({ created: T + 1000, country: 'DE' }), T),
      shard.record(aPageView({ created: T + 2000, country: 'US' }), T),
      shard.record(aPageView({ created: T + 60_000, country: 'US' }), T),
    ];
    const { cells, counted } = aggregateBatch(records, T, 48);
    expect(counted).toBe(4);
    // 2 minutes × (the total and every dimension)
    expect(cells.size).toBe(2 * (1 + DIMENSIONS.length));
    const cellOf = (dimension: Cell['dimension'], minuteMs: number) =>
      [...cells.values()].find((c) => c.dimension === dimension && c.minuteMs === minuteMs)!;
    const country = cellOf('country', T - 15_000);
    expect(country.values).toEqual(['US', 'DE']);
    expect(country.valueIndexes).toEqual([0, 1, 0]);
    expect(country.sequences).toEqual(records.slice(0, 3).map((r) => r.kinesis.sequenceNumber));
    expect(cellOf('total', T - 15_000).values).toEqual(['all']);
    expect(cellOf('country', T + 45_000).sequences).toEqual([records[3]!.kinesis.sequenceNumber]);
  });

  it('keeps cells of different shards apart', () => {
    const a = new KinesisRecordBuilder('shardId-000000000000');
    const b = new KinesisRecordBuilder('shardId-000000000001');
    const { cells } = aggregateBatch([a.record(aPageView(), T), b.record(aPageView(), T)], T, 48);
    expect(cells.size).toBe(2 * (1 + DIMENSIONS.length));
    const shardsOf = (shard: string) => [...cells.values()].filter((c) => c.skPrefix.includes(shard));
    expect(shardsOf('shardId-000000000000')).toHaveLength(1 + DIMENSIONS.length);
    expect(shardsOf('shardId-000000000001')).toHaveLength(1 + DIMENSIONS.length);
  });

  it('splits a url cell into value buckets by digest, the same bucket for a value in every batch', () => {
    const shard = new KinesisRecordBuilder();
    const urls = Array.from({ length: 40 }, (_, i) => `http://www.example.com/id=${i}`);
    const batch = () => urls.map((url) => shard.record(aPageView({ created: T, url }), T));
    const bucketsOf = (cells: Map<string, Cell>) =>
      new Map(
        [...cells.values()]
          .filter((c) => c.dimension === 'url')
          .flatMap((c) => c.values.map((value) => [value, c.bucket] as const)),
      );
    const first = aggregateBatch(batch(), T, 48).cells;
    const urlCells = [...first.values()].filter((c) => c.dimension === 'url');
    expect(urlCells.map((c) => c.bucket).sort()).toEqual([0, 1, 2, 3].slice(0, VALUE_BUCKETS.url));
    expect(new Set(urlCells.map((c) => c.skPrefix)).size).toBe(VALUE_BUCKETS.url);
    expect(bucketsOf(aggregateBatch(batch().reverse(), T, 48).cells)).toEqual(bucketsOf(first));
    for (const [url, bucket] of bucketsOf(first))
      expect(valueBucket(valueDigest(url), VALUE_BUCKETS.url)).toBe(bucket);
    // Dimensions of few values keep one cell.
    expect([...first.values()].filter((c) => c.dimension === 'country')).toHaveLength(1);
  });

  it('sets aside invalid records with their violation and drops events older than the retention', () => {
    const shard = new KinesisRecordBuilder();
    const records = [
      shard.record('{"not json', T),
      shard.record(aPageView({ country: 'XX' }), T),
      shard.record(aPageView({ created: T - 49 * HOUR_MS }), T),
      shard.record(aPageView({ created: T }), T),
    ];
    const result = aggregateBatch(records, T, 48);
    expect(result.rejected.map((r) => r.rejection.violation)).toEqual(['not_json', 'country_not_iso3166']);
    expect(result.expired).toBe(1);
    expect(result.counted).toBe(1);
  });

  it('validates against the record arrival time, not the processing clock', () => {
    const shard = new KinesisRecordBuilder();
    const created = T + 20 * 60_000;
    // Arrived 10 minutes before its created time (within skew), processed much later: still valid.
    const { rejected, counted } = aggregateBatch(
      [shard.record(aPageView({ created }), created - 10 * 60_000)],
      created + HOUR_MS,
      48,
    );
    expect(rejected).toEqual([]);
    expect(counted).toBe(1);
  });

  it('sizes the TTL from the retention after the end of the minute', () => {
    expect(expiresAtFor(T - 15_000, 48)).toBe((T - 15_000 + 60_000 + 48 * HOUR_MS) / 1000);
  });

  it('drops events whose items could expire before the invocation ends, and keeps younger ones', () => {
    const shard = new KinesisRecordBuilder();
    const minute = T - 15_000;
    // The minute's items expire at expiresAtFor(minute); an invocation may write for WRITE_WINDOW_SECONDS.
    const nowAtEdge = (expiresAtFor(minute, 48) - WRITE_WINDOW_SECONDS) * 1000;
    const record = shard.record(aPageView({ created: T }), T);
    expect(aggregateBatch([record], nowAtEdge, 48).expired).toBe(1);
    expect(aggregateBatch([record], nowAtEdge - 1000, 48).counted).toBe(1);
  });
});

describe('sequence numbers', () => {
  it('compare as numbers once padded, unlike raw strings', () => {
    expect('9' < '10').toBe(false);
    expect(padSequence('9') < padSequence('10')).toBe(true);
  });

  it('find the first record above a stored high-water', () => {
    const seqs = ['100', '200', '300'];
    expect(indexAbove(seqs, undefined)).toBe(0);
    expect(indexAbove(seqs, undefined, 2)).toBe(2);
    expect(indexAbove(seqs, padSequence('50'))).toBe(0);
    expect(indexAbove(seqs, padSequence('200'))).toBe(2);
    expect(indexAbove(seqs, padSequence('250'), 1)).toBe(2);
    expect(indexAbove(seqs, padSequence('300'))).toBe(3);
    expect(indexAbove(seqs, padSequence('1000'))).toBe(3);
  });
});

describe('planning a cell as updates', () => {
  /** A url cell of one record per value given, in that order. */
  const cellOf = (urls: string[]): Cell => {
    const values = [...new Set(urls)];
    return {
      site: 'default',
      pk: 'default#url#2026-11-25T12',
      skPrefix: speedGenerationPrefix(T, 'shardId-000000000000', 0),
      shardId: 'shardId-000000000000',
      minuteMs: T - 15_000,
      dimension: 'url',
      bucket: 0,
      expiresAt: expiresAtFor(T - 15_000, 48),
      sequences: urls.map((_, i) => String(1000 + i)),
      valueIndexes: urls.map((url) => values.indexOf(url)),
      errorFlags: urls.map(() => 0),
      hashes: urls.map((_, i) => i),
      values,
      digests: values.map(valueDigest),
    };
  };
  const url = (i: number) => `http://www.example.com/id=${i}`;

  it('takes the longest run of records that touches at most K values, counting repeats', () => {
    const cell = cellOf([1, 2, 1, 3, 2, 4, 1].map(url));
    const first = planUpdate(cell, 0, 3);
    expect([first.from, first.to]).toEqual([0, 5]);
    expect([...first.counts].map(([index, count]) => [cell.values[index], count])).toEqual([
      [url(1), 2],
      [url(2), 2],
      [url(3), 1],
    ]);
    expect(planUpdate(cell, 5, 3)).toMatchObject({ from: 5, to: 7 });
    expect(planUpdate(cell, 0, 100).to).toBe(7);
    expect(plannedUpdates([cell], { ...DEFAULT_CELL_WRITE_LIMITS, valuesPerWrite: 3 })).toBe(2);
    expect(plannedUpdates([cell])).toBe(1);
  });

  it('keeps the UpdateExpression under 4 KB with room for one more clause per value, whatever the values', () => {
    const k = DEFAULT_CELL_WRITE_LIMITS.valuesPerWrite;
    const longest = Array.from({ length: k }, (_, i) =>
      urlOfBytes(EVENT_LIMITS.maxUrlBytes, ((i % 4) + 1) as 1 | 2 | 3 | 4, `/${i}/`),
    );
    const cell = cellOf(longest);
    const update = planUpdate(cell, 0, k);
    expect(update.to).toBe(k);
    const input = buildUpdate('t', cell, update, 0, { kind: 'first' }, DEFAULT_CELL_WRITE_LIMITS);
    const bytes = Buffer.byteLength(input.UpdateExpression!, 'utf8');
    // Values travel as placeholders: the expression does not grow with them.
    expect(bytes).toBeLessThanOrEqual(longestUpdateExpressionBytes(k));
    expect(longestUpdateExpressionBytes(k)).toBeLessThan(0.8 * MAX_EXPRESSION_BYTES);
    // Under DynamoDB's 300 operators even if every action counted as one, with a clause per value to spare.
    const actions = input.UpdateExpression!.split(',').length;
    expect(actions + k).toBeLessThan(300);
    for (const name of Object.keys(input.ExpressionAttributeNames!))
      expect(name.length).toBeLessThanOrEqual(255);
  });

  it('names each value by its digest: its count and the whole value, in one item', () => {
    const cell = cellOf([url(1), url(1), url(2)]);
    const input = buildUpdate(
      't',
      cell,
      planUpdate(cell, 0, 64),
      3,
      { kind: 'first' },
      DEFAULT_CELL_WRITE_LIMITS,
    );
    const names = input.ExpressionAttributeNames!;
    const values = input.ExpressionAttributeValues!;
    expect(input.Key!.sk).toBe(`${cell.skPrefix}0003`);
    expect(names['#c0']).toBe(`c${valueDigest(url(1))}`);
    expect(names['#v0']).toBe(`v${valueDigest(url(1))}`);
    expect(values[':v0']).toBe(url(1));
    expect(input.UpdateExpression).toContain('#c0 :n2');
    expect(input.UpdateExpression).toContain('#c1 :n1');
    expect(values[':hw']).toBe(padSequence(cell.sequences[2]!));
    expect(values[':first']).toBe(padSequence(cell.sequences[0]!));
  });

  it('refuses limits that could break the expression budget or the 400 KB item', () => {
    expect(() => cellWriteLimits({ valuesPerWrite: 200 })).toThrow(/expression/);
    expect(() => cellWriteLimits({ valuesPerWrite: 0 })).toThrow(RangeError);
    expect(() => cellWriteLimits({ itemSizeLimitBytes: 350 * 1024 })).toThrow(/400 KB/);
    expect(cellWriteLimits()).toEqual(DEFAULT_CELL_WRITE_LIMITS);
  });
});

describe('the generation cache', () => {
  it('only moves a cell forward', () => {
    const cache = new GenerationCache();
    const present = new Set(['d']);
    cache.set('k', { generation: 3, counted: padSequence('500'), present });
    cache.set('k', { generation: 2, counted: padSequence('900'), present: new Set() });
    expect(cache.get('k')).toEqual({ generation: 3, counted: padSequence('900'), present });
  });

  it('forgets the least recently written cells beyond its size', () => {
    const cache = new GenerationCache(2);
    const at = (generation: number, counted: string) => ({ generation, counted, present: new Set<string>() });
    cache.set('a', at(0, '1'));
    cache.set('b', at(0, '1'));
    cache.set('a', at(1, '2'));
    cache.set('c', at(0, '1'));
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toEqual(at(1, '2'));
  });
});
