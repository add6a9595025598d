import type { KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import { encodePageView, type PageView } from '../shared/event.js';

/** Builds Kinesis records as Lambda receives them, with realistic 56-digit sequence numbers. */
export class KinesisRecordBuilder {
  private next = 0n;
  constructor(
    readonly shardId = 'shardId-000000000000',
    /** A real-looking 56-digit base so sequence numbers compare wrongly as unpadded strings of other widths. */
    base = 49_658_238_466_420_853_012_373_104_850_000_000_000_000_000_000_000_000n,
  ) {
    this.next = base;
  }

  record(payload: PageView | string | Uint8Array, arrivalMs = Date.now()): KinesisStreamRecord {
    const bytes =
      typeof payload === 'string'
        ? Buffer.from(payload)
        : payload instanceof Uint8Array
          ? Buffer.from(payload)
          : Buffer.from(encodePageView(payload));
    this.next += 1_000_000n;
    const sequenceNumber = this.next.toString();
    return {
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: 'p',
        sequenceNumber,
        data: bytes.toString('base64'),
        approximateArrivalTimestamp: arrivalMs / 1000,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `${this.shardId}:${sequenceNumber}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::000000000000:role/speed',
      awsRegion: 'us-east-1',
      eventSourceARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/test',
    };
  }
}

export const kinesisEvent = (records: KinesisStreamRecord[]): KinesisStreamEvent => ({ Records: records });
