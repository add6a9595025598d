import type { KinesisStreamRecord } from 'aws-lambda';
import type { CountDimension } from '../../shared/counts.js';
import { TOTAL_VALUE } from '../../shared/counts.js';
import { decodeBase64PageView, dimensionValue, DIMENSIONS, type Rejection } from '../../shared/event.js';
import { expiresAtFor, padSequence, speedPartitionKey, speedSortKey } from '../../shared/speed/table.js';
import { minuteBucket } from '../../shared/time.js';

/** One counter cell of a batch: every record of one shard that falls in one (minute, dimension, value). */
export interface Cell {
  readonly pk: string;
  readonly sk: string;
  readonly minuteMs: number;
  readonly dimension: CountDimension;
  readonly value: string;
  readonly expiresAt: number;
  /** Padded sequence numbers of the cell's records, ascending (records of a shard arrive in order). */
  readonly sequences: string[];
}

export interface RejectedRecord {
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly arrivalMs: number;
  readonly rejection: Rejection;
  readonly data: string;
}

export interface Aggregate {
  readonly cells: Map<string, Cell>;
  readonly rejected: RejectedRecord[];
  /** Valid events older than the speed retention: not counted here (the batch layer has them). */
  readonly expired: number;
  readonly counted: number;
}

/** Shard of a record, from its eventID `shardId-…:sequence`. */
export function shardOf(record: KinesisStreamRecord): string {
  const id = record.eventID;
  const colon = id.lastIndexOf(':');
  return colon > 0 ? id.slice(0, colon) : 'shardId-unknown';
}

/**
 * Decodes, validates and aggregates a batch in memory: one cell per (minute, dimension, value, shard).
 * @param nowMs the invocation clock, for dropping cells that would already be expired.
 */
export function aggregateBatch(
  records: readonly KinesisStreamRecord[],
  nowMs: number,
  retentionHours: number,
): Aggregate {
  const cells = new Map<string, Cell>();
  const rejected: RejectedRecord[] = [];
  let expired = 0;
  let counted = 0;
  const nowSeconds = nowMs / 1000;
  for (const record of records) {
    const shardId = shardOf(record);
    const { sequenceNumber, data, approximateArrivalTimestamp } = record.kinesis;
    const arrivalMs = Math.round(approximateArrivalTimestamp * 1000);
    const result = decodeBase64PageView(data, arrivalMs);
    if (!result.ok) {
      rejected.push({ shardId, sequenceNumber, arrivalMs, rejection: result.rejection, data });
      continue;
    }
    const minuteMs = minuteBucket(result.event.created);
    const expiresAt = expiresAtFor(minuteMs, retentionHours);
    // Never resurrect a counter that TTL has (or is about to have) removed.
    if (expiresAt <= nowSeconds) {
      expired += 1;
      continue;
    }
    counted += 1;
    const sequence = padSequence(sequenceNumber);
    const add = (dimension: CountDimension, value: string) => {
      const sk = speedSortKey(minuteMs, value, shardId);
      const pk = speedPartitionKey(dimension, minuteMs);
      const key = `${pk}\n${sk}`;
      const cell = cells.get(key);
      if (cell) cell.sequences.push(sequence);
      else cells.set(key, { pk, sk, minuteMs, dimension, value, expiresAt, sequences: [sequence] });
    };
    add('total', TOTAL_VALUE);
    for (const dimension of DIMENSIONS) add(dimension, dimensionValue(result.event, dimension));
  }
  return { cells, rejected, expired, counted };
}

/** How many of a cell's records lie above a stored high-water (all of them when there is none). */
export function countAbove(sequences: readonly string[], highWater: string | undefined): number {
  if (highWater === undefined) return sequences.length;
  let lo = 0;
  let hi = sequences.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sequences[mid]! <= highWater) lo = mid + 1;
    else hi = mid;
  }
  return sequences.length - lo;
}
