import { PutRecordsCommand, type KinesisClient, type PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';

/** PutRecords limits (Kinesis API reference). */
export const PUT_RECORDS_MAX_ENTRIES = 500;
export const PUT_RECORDS_MAX_BYTES = 5 * 1024 * 1024;

export interface ProducerRecord {
  readonly data: Uint8Array;
  readonly partitionKey: string;
}

export interface PutResult {
  readonly shardId: string;
  readonly sequenceNumber: string;
}

export interface PutOptions {
  /** Attempts per record before giving up. @default 8 */
  readonly maxAttempts?: number;
  /** First backoff; doubles each round, with full jitter. @default 100 */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Called after each round with how many entries were re-sent. */
  readonly onRetry?: (failedEntries: number, attempt: number) => void;
}

export class PutRecordsFailedError extends Error {
  override readonly name = 'PutRecordsFailedError';
  constructor(
    readonly failed: number,
    readonly lastErrorCode: string | undefined,
    /** Where each record landed, in input order; undefined for the records that were not stored. */
    readonly results: readonly (PutResult | undefined)[] = [],
    cause?: unknown,
  ) {
    super(
      `${failed} records still failed after all attempts (last error: ${lastErrorCode ?? 'unknown'})`,
      cause === undefined ? undefined : { cause },
    );
  }
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Splits records into PutRecords requests that respect the entry-count and payload-size limits. */
export function* putRecordsChunks<T extends ProducerRecord>(records: readonly T[]): Generator<T[]> {
  let chunk: T[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = record.data.byteLength + Buffer.byteLength(record.partitionKey);
    if (
      chunk.length === PUT_RECORDS_MAX_ENTRIES ||
      (chunk.length > 0 && bytes + size > PUT_RECORDS_MAX_BYTES)
    ) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(record);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

/**
 * Puts records with PutRecords, re-sending exactly the entries that a response marks failed
 * (PutRecords fails partially, e.g. on ProvisionedThroughputExceeded) with exponential backoff.
 * Returns where each record landed, in input order. Order across retried records is not preserved,
 * as with any Kinesis producer that retries. When records still fail after `maxAttempts`, or a call itself
 * fails (after the SDK's own retries), throws PutRecordsFailedError carrying where the others landed.
 */
export async function putRecordsReliably(
  kinesis: KinesisClient,
  streamName: string,
  records: readonly ProducerRecord[],
  options: PutOptions = {},
): Promise<{ results: PutResult[]; retriedEntries: number }> {
  const { maxAttempts = 8, baseDelayMs = 100, maxDelayMs = 5000, sleep = defaultSleep } = options;
  const results: PutResult[] = new Array(records.length);
  let retriedEntries = 0;
  const indexed = records.map((record, index) => ({ ...record, index }));
  for (const chunk of putRecordsChunks(indexed)) {
    let pending = chunk;
    for (let attempt = 1; pending.length > 0; attempt += 1) {
      const entries: PutRecordsRequestEntry[] = pending.map((r) => ({
        Data: r.data,
        PartitionKey: r.partitionKey,
      }));
      let response;
      try {
        response = await kinesis.send(new PutRecordsCommand({ StreamName: streamName, Records: entries }));
      } catch (error) {
        // The caller learns which records did land before the stream refused the rest.
        const failed = records.length - results.filter(Boolean).length;
        throw new PutRecordsFailedError(failed, (error as Error).name, results, error);
      }
      const failed: typeof pending = [];
      let lastErrorCode: string | undefined;
      response.Records?.forEach((entry, i) => {
        const record = pending[i]!;
        if (entry.ErrorCode || !entry.SequenceNumber) {
          failed.push(record);
          lastErrorCode = entry.ErrorCode;
        } else {
          results[record.index] = { shardId: entry.ShardId!, sequenceNumber: entry.SequenceNumber };
        }
      });
      if (failed.length === 0) break;
      if (attempt >= maxAttempts) {
        const notStored = records.length - results.filter(Boolean).length;
        throw new PutRecordsFailedError(notStored, lastErrorCode, results);
      }
      retriedEntries += failed.length;
      options.onRetry?.(failed.length, attempt);
      await sleep(Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));
      pending = failed;
    }
  }
  return { results, retriedEntries };
}
