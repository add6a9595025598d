import { describe, expect, it } from 'vitest';
import type { FirehoseTransformationEventRecord } from 'aws-lambda';
import { transformRecord } from '../../shared/batch/transform.js';
import { encodePageView } from '../../shared/event.js';
import { sourceOf } from '../../shared/sources.js';
import { userHash } from '../../shared/sketch/index.js';
import { aPageView } from '../support/builders.js';

const ARRIVAL = Date.UTC(2026, 10, 25, 23, 59, 59);
const firehoseRecord = (payload: string, arrival = ARRIVAL): FirehoseTransformationEventRecord => ({
  recordId: 'r1',
  approximateArrivalTimestamp: arrival + 5000,
  data: Buffer.from(payload).toString('base64'),
  kinesisRecordMetadata: {
    shardId: 'shardId-000000000000',
    partitionKey: 'p',
    approximateArrivalTimestamp: arrival,
    sequenceNumber: '1',
    subsequenceNumber: '',
  },
});

describe('Firehose transform', () => {
  it('accepts a valid event as one JSON line with its record identity and event-time partition keys', () => {
    const event = aPageView({ created: Date.UTC(2026, 10, 25, 22, 10), eventId: 'e-1' });
    const result = transformRecord(firehoseRecord(encodePageView(event)));
    expect(result.result).toBe('Ok');
    const line = Buffer.from(result.data, 'base64').toString();
    expect(line.endsWith('}\n')).toBe(true);
    const row = {
      ...event,
      source: sourceOf(event),
      userHash: userHash(event.userId),
      shardId: 'shardId-000000000000',
      sequenceNumber: '1',
    };
    expect(JSON.parse(line)).toEqual(row);
    expect(result.row).toEqual(row);
    expect(result.metadata).toEqual({ partitionKeys: { dt: '2026-11-25', hour: '22' } });
  });

  it('fails an invalid record with its violation, keeping the original bytes', () => {
    const payload = JSON.stringify({ ...aPageView(), country: 'XX' });
    const result = transformRecord(firehoseRecord(payload));
    expect(result.result).toBe('ProcessingFailed');
    expect(Buffer.from(result.data, 'base64').toString()).toBe(payload);
    expect(result.rejection?.violation).toBe('country_not_iso3166');
  });

  it('judges the future-skew rule by the Kinesis arrival time, as the speed layer does', () => {
    const created = ARRIVAL + 14 * 60_000;
    expect(transformRecord(firehoseRecord(encodePageView(aPageView({ created })))).result).toBe('Ok');
    expect(
      transformRecord(firehoseRecord(encodePageView(aPageView({ created: ARRIVAL + 16 * 60_000 })))).result,
    ).toBe('ProcessingFailed');
  });
});
