import { TOTAL_VALUE } from '../counts.js';
import { HOUR_MS, MINUTE_MS } from '../time.js';

/**
 * Layout of the speed table. One item per (minute, dimension, value, shard):
 *   pk = `<dimension>#<hour>`             e.g. `country#2026-11-25T12` — one Query reads an hour of a dimension
 *   sk = `<minute>#<value key>#<shardId>` e.g. `2026-11-25T12:34#US#shardId-000000000001`
 * Keys are built by shared/keys.ts (a long value appears in the key in a bounded form; `v` holds it whole).
 * Per-shard items keep two shards from contending on one item and make the high-water a plain attribute.
 */

export const SPEED_ATTRIBUTES = {
  count: 'n',
  /** Highest sequence number of the shard already counted in this item, zero-padded (see padSequence). */
  highWater: 'hw',
  minute: 'm',
  value: 'v',
  expiresAt: 'expiresAt',
} as const;

export interface SpeedItem {
  readonly pk: string;
  readonly sk: string;
  readonly n: number;
  readonly hw: string;
  readonly m: number;
  readonly v: string;
  readonly expiresAt: number;
}

export { hourKey, minuteKey, speedPartitionKey, speedSortKey } from '../keys.js';

/**
 * Kinesis sequence numbers are decimal strings of up to 129 digits; DynamoDB numbers keep only 38 digits.
 * Left-padded to a fixed width, string order equals numeric order, so conditions can compare them.
 */
export const SEQUENCE_WIDTH = 129;
export const padSequence = (sequenceNumber: string): string => sequenceNumber.padStart(SEQUENCE_WIDTH, '0');

/** Epoch seconds after which a minute cell is expired: the minute's end plus the retention. */
export const expiresAtFor = (minuteMs: number, retentionHours: number): number =>
  Math.floor((minuteMs + MINUTE_MS + retentionHours * HOUR_MS) / 1000);

export { TOTAL_VALUE };
