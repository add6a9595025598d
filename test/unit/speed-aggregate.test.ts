import { describe, expect, it } from 'vitest';
import { aggregateBatch, countAbove } from '../../lambdas/speed/aggregate.js';
import { expiresAtFor, padSequence } from '../../shared/speed/table.js';
import { HOUR_MS } from '../../shared/time.js';
import { aPageView } from '../support/builders.js';
import { KinesisRecordBuilder } from '../../local/kinesis-records.js';

const T = Date.UTC(2026, 10, 25, 12, 30, 15);

describe('aggregating a batch into counter cells', () => {
  it('makes one cell per minute, dimension and value, with every record of the cell in order', () => {
    const shard = new KinesisRecordBuilder();
    const records = [
      shard.record(aPageView({ created: T, country: 'US' }), T),
      shard.record(aPageView({ created: T + 1000, country: 'DE' }), T),
      shard.record(aPageView({ created: T + 2000, country: 'US' }), T),
      shard.record(aPageView({ created: T + 60_000, country: 'US' }), T),
    ];
    const { cells, counted } = aggregateBatch(records, T, 48);
    expect(counted).toBe(4);
    const byKey = [...cells.values()].map((c) => [c.dimension, c.value, c.minuteMs, c.sequences.length]);
    expect(byKey).toContainEqual(['total', 'all', T - 15_000, 3]);
    expect(byKey).toContainEqual(['country', 'US', T - 15_000, 2]);
    expect(byKey).toContainEqual(['country', 'DE', T - 15_000, 1]);
    expect(byKey).toContainEqual(['country', 'US', T + 45_000, 1]);
    // 2 minutes × (total + url + browser + status) + 3 country cells
    expect(cells.size).toBe(2 * 4 + 3);
    const usCell = [...cells.values()].find(
      (c) => c.dimension === 'country' && c.value === 'US' && c.minuteMs === T - 15_000,
    )!;
    expect(usCell.sequences).toEqual([records[0]!, records[2]!].map((r) => r.kinesis.sequenceNumber));
  });

  it('keeps cells of different shards apart', () => {
    const a = new KinesisRecordBuilder('shardId-000000000000');
    const b = new KinesisRecordBuilder('shardId-000000000001');
    const { cells } = aggregateBatch([a.record(aPageView(), T), b.record(aPageView(), T)], T, 48);
    expect(cells.size).toBe(10);
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
});

describe('sequence numbers', () => {
  it('compare as numbers once padded, unlike raw strings', () => {
    expect('9' < '10').toBe(false);
    expect(padSequence('9') < padSequence('10')).toBe(true);
  });

  it('count the records above a stored high-water', () => {
    const seqs = ['100', '200', '300'];
    expect(countAbove(seqs, undefined)).toBe(3);
    expect(countAbove(seqs, padSequence('50'))).toBe(3);
    expect(countAbove(seqs, padSequence('200'))).toBe(1);
    expect(countAbove(seqs, padSequence('300'))).toBe(0);
    expect(countAbove(seqs, padSequence('1000'))).toBe(0);
  });
});
