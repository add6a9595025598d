import type { KinesisStreamRecord } from 'aws-lambda';
import type { CountDimension } from '../../shared/counts.js';
import { TOTAL_VALUE } from '../../shared/counts.js';
import { decodeBase64PageView, dimensionValue, DIMENSIONS, type Rejection } from '../../shared/event.js';
import { expiresAtFor, padSequence, speedPartitionKey, speedSortKey } from '../../shared/speed/table.js';
import { HOUR_MS, minuteBucket } from '../../shared/time.js';

/** One counter cell of a batch: every record of one shard that falls in one (minute, dimension, value). */
export interface Cell {
  readonly pk: string;
  readonly sk: string;
  readonly minuteMs: number;
  readonly dimension: CountDimension;
  readonly value: string;
  readonly expiresAt: number;
  /** Sequence numbers of the cell's records as Kinesis gives them, ascending (a shard's records arrive in order). */
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
  /** Re-sends inside this batch: an eventId already seen in the batch for the same event hour. */
  readonly repeats: number;
  readonly counted: number;
}

/** Shard of a record, from its eventID `shardId-…:sequence`. */
export function shardOf(record: KinesisStreamRecord): string {
  const id = record.eventID;
  const colon = id.lastIndexOf(':');
  return colon > 0 ? id.slice(0, colon) : 'shardId-unknown';
}

/** Cells of one (shard, minute), by dimension and then value. */
interface MinuteCells {
  readonly minuteMs: number;
  readonly expiresAt: number;
  readonly byDimension: Map<CountDimension, Map<string, Cell>>;
}

/**
 * Decodes, validates and aggregates a batch in memory: one cell per (minute, dimension, value, shard).
 * Keys are built once per cell, not per record, and sequence numbers are padded only when written:
 * this loop runs for every record of every batch.
 * @param nowMs the invocation clock, for dropping cells that would already be expired.
 */
export function aggregateBatch(
  records: readonly KinesisStreamRecord[],
  nowMs: number,
  retentionHours: number,
): Aggregate {
  const groups = new Map<string, MinuteCells>();
  const rejected: RejectedRecord[] = [];
  let expired = 0;
  let repeats = 0;
  let counted = 0;
  const nowSeconds = nowMs / 1000;
  // The batch layer counts an eventId once per event hour; within a batch the speed layer does the same.
  const seenEvents = new Set<string>();
  for (const record of records) {
    const shardId = shardOf(record);
    const { sequenceNumber, data, approximateArrivalTimestamp } = record.kinesis;
    const arrivalMs = Math.round(approximateArrivalTimestamp * 1000);
    const result = decodeBase64PageView(data, arrivalMs);
    if (!result.ok) {
      rejected.push({ shardId, sequenceNumber, arrivalMs, rejection: result.rejection, data });
      continue;
    }
    const event = result.event;
    if (event.eventId !== undefined) {
      const identity = `${Math.floor(event.created / HOUR_MS)}@${event.eventId}`;
      if (seenEvents.has(identity)) {
        repeats += 1;
        continue;
      }
      seenEvents.add(identity);
    }
    const minuteMs = minuteBucket(event.created);
    const groupKey = `${shardId}@${minuteMs}`;
    let group = groups.get(groupKey);
    if (!group) {
      group = { minuteMs, expiresAt: expiresAtFor(minuteMs, retentionHours), byDimension: new Map() };
      groups.set(groupKey, group);
    }
    // Never resurrect a counter that TTL has (or is about to have) removed.
    if (group.expiresAt <= nowSeconds) {
      expired += 1;
      continue;
    }
    counted += 1;
    for (let d = 0; d < COUNTED.length; d += 1) {
      const dimension = COUNTED[d]!;
      const value = dimension === 'total' ? TOTAL_VALUE : dimensionValue(event, dimension);
      let byValue = group.byDimension.get(dimension);
      if (!byValue) group.byDimension.set(dimension, (byValue = new Map()));
      const cell = byValue.get(value);
      if (cell) {
        cell.sequences.push(sequenceNumber);
      } else {
        byValue.set(value, {
          pk: speedPartitionKey(dimension, minuteMs),
          sk: speedSortKey(minuteMs, value, shardId),
          minuteMs,
          dimension,
          value,
          expiresAt: group.expiresAt,
          sequences: [sequenceNumber],
        });
      }
    }
  }
  const cells = new Map<string, Cell>();
  for (const group of groups.values()) {
    for (const byValue of group.byDimension.values()) {
      for (const cell of byValue.values()) cells.set(`${cell.pk}\n${cell.sk}`, cell);
    }
  }
  return { cells, rejected, expired, repeats, counted };
}

const COUNTED: readonly CountDimension[] = ['total', ...DIMENSIONS];

/**
 * How many of a cell's records lie above a stored (padded) high-water; all of them when there is none.
 * @param sequences ascending, unpadded.
 */
export function countAbove(sequences: readonly string[], highWater: string | undefined): number {
  if (highWater === undefined) return sequences.length;
  let lo = 0;
  let hi = sequences.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (padSequence(sequences[mid]!) <= highWater) lo = mid + 1;
    else hi = mid;
  }
  return sequences.length - lo;
}
