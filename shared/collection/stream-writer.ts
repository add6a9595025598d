import type { KinesisClient } from '@aws-sdk/client-kinesis';
import {
  putRecordsReliably,
  PutRecordsFailedError,
  type ProducerRecord,
  type PutOptions,
} from '../kinesis-producer.js';

/** Where the collector puts accepted events: one call per request, telling which records were stored. */
export interface EventStreamWriter {
  put(records: readonly ProducerRecord[]): Promise<StreamWriteResult>;
}

export interface StreamWriteResult {
  /** Per record, in input order: did the stream take it? */
  readonly stored: readonly boolean[];
  /** Entries sent again after a response marked them failed. */
  readonly resent: number;
  /** Why some records were not stored. */
  readonly error?: Error;
}

/**
 * The collector's retry budget: a browser's request should not wait seconds. Three rounds with short backoff
 * ride out a shard's per-second limit; beyond that the collector answers 503 and the sender retries later.
 */
export const COLLECTOR_PUT_OPTIONS: PutOptions = { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 250 };

/** PutRecords, re-sending exactly the entries a response marks failed (shared/kinesis-producer.ts). */
export function putRecordsWriter(
  kinesis: KinesisClient,
  streamName: string,
  options: PutOptions = COLLECTOR_PUT_OPTIONS,
): EventStreamWriter {
  return {
    async put(records) {
      let resent = 0;
      const onRetry = (failed: number, attempt: number) => {
        resent += failed;
        options.onRetry?.(failed, attempt);
      };
      try {
        await putRecordsReliably(kinesis, streamName, records, { ...options, onRetry });
        return { stored: records.map(() => true), resent };
      } catch (error) {
        if (!(error instanceof PutRecordsFailedError)) throw error;
        return { stored: records.map((_, i) => error.results[i] !== undefined), resent, error };
      }
    },
  };
}
