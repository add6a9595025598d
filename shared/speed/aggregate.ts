import type { KinesisStreamRecord } from 'aws-lambda';
import type { CountDimension } from '../counts.js';
import { TOTAL_VALUE } from '../counts.js';
import { decodeBase64PageView, dimensionValue, DIMENSIONS, type PageView, type Rejection } from '../event.js';
import {
  expiresAtFor,
  speedGenerationPrefix,
  speedPartitionKey,
  VALUE_BUCKETS,
  valueBucket,
  WRITE_WINDOW_SECONDS,
} from './table.js';
import { valueDigest } from '../keys.js';
import { userHash } from '../sketch/index.js';
import { HOUR_MS, minuteBucket } from '../time.js';

/**
 * One counter cell of a batch: every record of one shard that falls in one (minute, dimension). The cell's
 * values are counters inside its items (shared/speed/table.ts), so a batch writes per cell, not per value.
 */
export interface Cell {
  readonly site: string;
  readonly pk: string;
  /** Sort keys of the cell's generations start with this (shared/keys.ts speedGenerationPrefix). */
  readonly skPrefix: string;
  readonly shardId: string;
  readonly minuteMs: number;
  readonly dimension: CountDimension;
  /** Which of the dimension's VALUE_BUCKETS the cell's values hash to. */
  readonly bucket: number;
  readonly expiresAt: number;
  /** Sequence numbers of the cell's records as Kinesis gives them, ascending (a shard's records arrive in order). */
  readonly sequences: string[];
  /** For each record, the index of its value in `values`. */
  readonly valueIndexes: number[];
  /** For each record: 1 when its status is 400 or above (an error page view), else 0. */
  readonly errorFlags: number[];
  /** For each record, its visitor hash (shared/sketch userHash of userId). */
  readonly hashes: number[];
  /** The cell's distinct values, in order of first appearance, and their digests (shared/keys.ts valueDigest). */
  readonly values: string[];
  readonly digests: string[];
}

/** What the speed layer keeps of a Kinesis record, and what a dead letter of it holds besides the reason. */
export interface RecordFields {
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly arrivalMs: number;
  /** The payload, base64 as Kinesis gives it. */
  readonly data: string;
}

export interface RejectedRecord extends RecordFields {
  readonly rejection: Rejection;
}

/** A record the batch counts, as the rollup blocks keep it (shared/speed/rollup.ts). */
export interface CountedRecord {
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly minuteMs: number;
  readonly event: PageView;
  readonly hash: number;
}

export interface Aggregate {
  readonly cells: Map<string, Cell>;
  /** The counted records in batch order: what the cells count, record by record. */
  readonly records: CountedRecord[];
  readonly rejected: RejectedRecord[];
  /** Valid events at the end of the speed retention (WRITE_WINDOW_SECONDS): not counted here (the batch layer has them). */
  readonly expired: number;
  /** Re-sends inside this batch: an eventId already seen in the batch for the same event hour. */
  readonly repeats: number;
  readonly counted: number;
}

/** Shard of a record, from its eventID `shardId-…:sequence`. */
export function recordShardId(record: KinesisStreamRecord): string {
  const id = record.eventID;
  const colon = id.lastIndexOf(':');
  return colon > 0 ? id.slice(0, colon) : 'shardId-unknown';
}

/** A record's shard, sequence number, arrival time in milliseconds and payload. */
export function recordFields(record: KinesisStreamRecord): RecordFields {
  const { sequenceNumber, data, approximateArrivalTimestamp } = record.kinesis;
  return {
    shardId: recordShardId(record),
    sequenceNumber,
    arrivalMs: Math.round(approximateArrivalTimestamp * 1000),
    data,
  };
}

/** A dimension's cells of one (shard, minute): one per value bucket, and where each value went. */
interface DimensionCells {
  readonly buckets: (Cell | undefined)[];
  readonly placed: Map<string, { readonly cell: Cell; readonly index: number }>;
}

/** Cells of one (site, shard, minute), by dimension. */
interface MinuteCells {
  readonly minuteMs: number;
  readonly expiresAt: number;
  readonly byDimension: Map<CountDimension, DimensionCells>;
}

/**
 * Decodes, validates and aggregates a batch in memory: one cell per (site, minute, dimension, shard), holding
 * each record's value. Keys are built once per cell, not per record, and sequence numbers are padded only when
 * written: this loop runs for every record of every batch.
 * @param nowMs the invocation clock, for dropping records whose items could expire before the invocation ends.
 * @param options.buckets other values than VALUE_BUCKETS only measure alternatives: a table keeps its layout.
 * @param options.defaultSite the site of a record that names none (Settings.defaultSite).
 */
export function aggregateBatch(
  records: readonly KinesisStreamRecord[],
  nowMs: number,
  retentionHours: number,
  options: {
    readonly buckets?: Readonly<Record<CountDimension, number>>;
    readonly defaultSite?: string;
  } = {},
): Aggregate {
  const buckets = options.buckets ?? VALUE_BUCKETS;
  const groups = new Map<string, MinuteCells>();
  const rejected: RejectedRecord[] = [];
  const countedRecords: CountedRecord[] = [];
  let expired = 0;
  let repeats = 0;
  let counted = 0;
  const latestWrite = nowMs / 1000 + WRITE_WINDOW_SECONDS;
  // The batch layer counts an eventId once per event hour; within a batch the speed layer does the same.
  const seenEvents = new Set<string>();
  for (const record of records) {
    const { shardId, sequenceNumber, arrivalMs, data } = recordFields(record);
    const result = decodeBase64PageView(data, arrivalMs, options.defaultSite);
    if (!result.ok) {
      rejected.push({ shardId, sequenceNumber, arrivalMs, rejection: result.rejection, data });
      continue;
    }
    const event = result.event;
    if (event.eventId !== undefined) {
      // Per site, as the batch SQL deduplicates: one page view is one site's.
      const identity = `${event.site}@${Math.floor(event.created / HOUR_MS)}@${event.eventId}`;
      if (seenEvents.has(identity)) {
        repeats += 1;
        continue;
      }
      seenEvents.add(identity);
    }
    const minuteMs = minuteBucket(event.created);
    const site = event.site;
    const groupKey = `${site}@${shardId}@${minuteMs}`;
    let group = groups.get(groupKey);
    if (!group) {
      group = { minuteMs, expiresAt: expiresAtFor(minuteMs, retentionHours), byDimension: new Map() };
      groups.set(groupKey, group);
    }
    // Never resurrect a counter that TTL has (or, before this invocation can end, may have) removed.
    if (group.expiresAt <= latestWrite) {
      expired += 1;
      continue;
    }
    counted += 1;
    const error = event.status >= 400 ? 1 : 0;
    const hash = userHash(event.userId);
    countedRecords.push({ shardId, sequenceNumber, minuteMs, event, hash });
    for (let d = 0; d < COUNTED.length; d += 1) {
      const dimension = COUNTED[d]!;
      const value = dimension === 'total' ? TOTAL_VALUE : dimensionValue(event, dimension);
      let ofDimension = group.byDimension.get(dimension);
      if (!ofDimension) group.byDimension.set(dimension, (ofDimension = { buckets: [], placed: new Map() }));
      let placed = ofDimension.placed.get(value);
      if (!placed) {
        const digest = valueDigest(value);
        const bucket = valueBucket(digest, buckets[dimension]);
        const cell = (ofDimension.buckets[bucket] ??= {
          site,
          pk: speedPartitionKey(site, dimension, minuteMs),
          skPrefix: speedGenerationPrefix(minuteMs, shardId, bucket),
          shardId,
          minuteMs,
          dimension,
          bucket,
          expiresAt: group.expiresAt,
          sequences: [],
          valueIndexes: [],
          errorFlags: [],
          hashes: [],
          values: [],
          digests: [],
        });
        placed = { cell, index: cell.values.length };
        cell.values.push(value);
        cell.digests.push(digest);
        ofDimension.placed.set(value, placed);
      }
      placed.cell.sequences.push(sequenceNumber);
      placed.cell.valueIndexes.push(placed.index);
      placed.cell.errorFlags.push(error);
      placed.cell.hashes.push(hash);
    }
  }
  const cells = new Map<string, Cell>();
  for (const group of groups.values()) {
    for (const { buckets } of group.byDimension.values()) {
      for (const cell of buckets) if (cell) cells.set(`${cell.pk}\n${cell.skPrefix}`, cell);
    }
  }
  return { cells, records: countedRecords, rejected, expired, repeats, counted };
}

const COUNTED: readonly CountDimension[] = ['total', ...DIMENSIONS];
