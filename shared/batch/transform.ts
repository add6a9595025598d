import type { FirehoseTransformationEventRecord, FirehoseTransformationResultRecord } from 'aws-lambda';
import { decodeBase64PageView, encodePageView, type MasterRecord, type Rejection } from '../event.js';
import { userHash } from '../sketch/index.js';
import { sourceOf } from '../sources.js';
import { hourPartition } from '../time.js';
import { DEFAULT_SETTINGS } from '../resources.js';

/**
 * Firehose data transformation for the master dataset: the same validation as the speed layer, so that
 * batch and speed count the same events, and the event-time partition keys for dynamic partitioning.
 */

export interface TransformedRecord extends FirehoseTransformationResultRecord {
  readonly data: string;
  /** The accepted event with its record identity (absent when the record failed). */
  readonly row?: MasterRecord;
  /** Why a record failed (absent when it was accepted). */
  readonly rejection?: Rejection;
}

/** Kinesis arrival time: the clock the speed layer validates with, so both layers decide alike. */
function arrivalMs(record: FirehoseTransformationEventRecord): number {
  return record.kinesisRecordMetadata?.approximateArrivalTimestamp ?? record.approximateArrivalTimestamp;
}

/** @param defaultSite the site of a record that names none (Settings.defaultSite), as the speed layer has it. */
export function transformRecord(
  record: FirehoseTransformationEventRecord,
  defaultSite: string = DEFAULT_SETTINGS.defaultSite,
): TransformedRecord {
  const result = decodeBase64PageView(record.data, arrivalMs(record), defaultSite);
  if (!result.ok) {
    // Firehose writes ProcessingFailed records, unchanged, under the error output prefix.
    return {
      recordId: record.recordId,
      result: 'ProcessingFailed',
      data: record.data,
      rejection: result.rejection,
    };
  }
  const { dt, hour } = hourPartition(result.event.created);
  const row: MasterRecord = {
    ...result.event,
    source: sourceOf(result.event),
    userHash: userHash(result.event.userId),
    shardId: record.kinesisRecordMetadata?.shardId ?? '',
    sequenceNumber: record.kinesisRecordMetadata?.sequenceNumber ?? record.recordId,
  };
  // The source, the visitor hash and the record identity join the event's JSON (a sequence number is a string); the OpenX
  // SerDe maps userId, userHash, shardId and sequenceNumber to the lower-case columns.
  const identity =
    `,"source":${JSON.stringify(row.source)},"userHash":${row.userHash},"shardId":${JSON.stringify(row.shardId)},` +
    `"sequenceNumber":${JSON.stringify(row.sequenceNumber)}}`;
  return {
    recordId: record.recordId,
    result: 'Ok',
    // One JSON object per line.
    data: Buffer.from(encodePageView(result.event).slice(0, -1) + identity + '\n').toString('base64'),
    metadata: { partitionKeys: { dt, hour } },
    row,
  };
}

export function transformRecords(
  records: readonly FirehoseTransformationEventRecord[],
  defaultSite: string = DEFAULT_SETTINGS.defaultSite,
): TransformedRecord[] {
  return records.map((record) => transformRecord(record, defaultSite));
}
