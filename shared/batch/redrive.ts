import { createHash } from 'node:crypto';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { transformRecord } from './transform.js';
import type { MasterRecord, Violation } from '../event.js';
import { PREFIXES } from '../resources.js';

/**
 * Puts the records Firehose could not process back through the transform into `raw/`. After its transform
 * retries Firehose writes a failed batch to `firehose-errors/processing-failed/…`, one JSON line per record:
 * `{attemptsMade, arrivalTimestamp, errorCode, errorMessage, attemptEndingTimestamp, rawData, lambdaArn}`
 * (Firehose developer guide, "Data transformation failure handling"). The Kinesis identity of a record is not
 * in that line, so a redriven record's identity is its place: shard `redrive`, sequence `<error object>#<line>`.
 * The view SQL counts each identity once, and the objects a redrive writes have keys derived from the error
 * object, written only if absent: a record redriven twice still counts once, and a second redrive writes
 * nothing. Records the transform refuses again (invalid events, not failed invocations) stay where they are.
 */

export const REDRIVE_SHARD = 'redrive';
export const PROCESSING_FAILED_PREFIX = PREFIXES.processingFailed;

export interface RedriveDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  /** Writes master-dataset rows as Parquet with the Glue table's schema (Firehose's serializer). */
  readonly parquet: (rows: readonly MasterRecord[]) => Promise<Uint8Array>;
  readonly log?: (line: string) => void;
}

export interface RedriveSummary {
  /** Error objects read, and the records in them. */
  readonly sources: number;
  readonly records: number;
  /** Records the transform accepted this time, and the raw objects written for them (or already there). */
  readonly redriven: number;
  readonly objectsWritten: number;
  readonly objectsPresent: number;
  /** Records the transform refuses again, by violation: invalid input, kept under processing-failed/. */
  readonly refused: Readonly<Partial<Record<Violation, number>>>;
}

interface FailedRecord {
  readonly rawData: string;
  readonly arrivalTimestamp?: number | string;
}

const digest = (text: string) => createHash('sha256').update(text).digest('base64url').slice(0, 16);

async function exists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    const { name, $metadata } = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (name === 'NotFound' || $metadata?.httpStatusCode === 404) return false;
    throw error;
  }
}

/** Redrives every error object under `processing-failed/` (or under `prefix` inside it). */
export async function redriveFailed(
  deps: RedriveDeps,
  prefix: string = PROCESSING_FAILED_PREFIX,
): Promise<RedriveSummary> {
  const refused: Partial<Record<Violation, number>> = {};
  let sources = 0;
  let records = 0;
  let redriven = 0;
  let objectsWritten = 0;
  let objectsPresent = 0;
  let token: string | undefined;
  do {
    const page = await deps.s3.send(
      new ListObjectsV2Command({
        Bucket: deps.bucket,
        Prefix: prefix,
        ...(token ? { ContinuationToken: token } : {}),
      }),
    );
    for (const object of page.Contents ?? []) {
      const source = object.Key!;
      const body = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: source }));
      const lines = (await body.Body!.transformToString()).split('\n').filter((line) => line.trim() !== '');
      sources += 1;
      const partitions = new Map<string, MasterRecord[]>();
      lines.forEach((line, index) => {
        records += 1;
        const failed = JSON.parse(line) as FailedRecord;
        const arrival = Number(failed.arrivalTimestamp ?? 0);
        const identity = `${source}#${index}`;
        const result = transformRecord({
          recordId: identity,
          approximateArrivalTimestamp: arrival,
          data: failed.rawData,
          kinesisRecordMetadata: {
            shardId: REDRIVE_SHARD,
            partitionKey: '',
            approximateArrivalTimestamp: arrival,
            sequenceNumber: identity,
            subsequenceNumber: '',
          },
        });
        if (!result.row || !result.metadata) {
          const violation = result.rejection?.violation;
          if (violation) refused[violation] = (refused[violation] ?? 0) + 1;
          return;
        }
        redriven += 1;
        const { dt, hour } = result.metadata.partitionKeys as { dt: string; hour: string };
        const partition = `dt=${dt}/hour=${hour}`;
        partitions.set(partition, [...(partitions.get(partition) ?? []), result.row]);
      });
      for (const [partition, rows] of partitions) {
        const key = `${PREFIXES.raw}${partition}/${REDRIVE_SHARD}-${digest(source)}.parquet`;
        if (await exists(deps.s3, deps.bucket, key)) {
          objectsPresent += 1;
          continue;
        }
        await deps.s3.send(
          new PutObjectCommand({ Bucket: deps.bucket, Key: key, Body: await deps.parquet(rows) }),
        );
        objectsWritten += 1;
        deps.log?.(`redrive: ${rows.length} records of ${source} → ${key}`);
      }
    }
    token = page.NextContinuationToken;
  } while (token);
  return { sources, records, redriven, objectsWritten, objectsPresent, refused };
}
