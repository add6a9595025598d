import { TOTAL_VALUE, type CountDimension } from '../counts.js';
import { DIGEST_CHARS } from '../keys.js';
import { HOUR_MS, MINUTE_MS } from '../time.js';

/**
 * Layout of the speed table. One item per (dimension, minute, shard, value bucket, generation), holding values:
 *   pk = `<dimension>#<hour>`                        e.g. `url#2026-11-25T12` — one Query reads an hour
 *   sk = `<minute>#<shardId>#b<bucket>#g<generation>` e.g. `2026-11-25T12:34#shardId-000000000001#b2#g0000`
 *   c<digest> = count, v<digest> = the whole value, for each value of the item; digest = valueDigest(value)
 *   hw, m, expiresAt, sz                             see SPEED_ATTRIBUTES
 * Keys are built by shared/keys.ts. Per-shard items keep two shards from contending on one item and make the
 * high-water a plain attribute; a value's bucket is fixed by its digest (VALUE_BUCKETS); a (minute, shard,
 * bucket) moves to its next generation when an item has received `sz` ≥ the size limit, which bounds both the
 * item (400 KB) and the write units of every update (shared/speed/cell-writer.ts).
 */

export const SPEED_ATTRIBUTES = {
  /** Highest sequence number of the shard already counted in this item, zero-padded (see padSequence). */
  highWater: 'hw',
  minute: 'm',
  expiresAt: 'expiresAt',
  /** Approximate bytes of value attributes this item has received (never decreases). */
  size: 'sz',
  /** `c<digest>`: the count of one value. */
  countPrefix: 'c',
  /** `v<digest>`: the value itself. */
  valuePrefix: 'v',
  /** `e<digest>`: of the value's page views, those with status 400 or above. */
  errorPrefix: 'e',
  /**
   * `u<digest>`: the value's visitor hashes, a number set (ADD is a server-side union: idempotent, no read);
   * it is the exact, sparse form of a visitor sketch (shared/sketch), merged with the batch layer's at query time.
   */
  visitorPrefix: 'u',
} as const;

export const countAttribute = (digest: string): string => `${SPEED_ATTRIBUTES.countPrefix}${digest}`;
export const valueAttribute = (digest: string): string => `${SPEED_ATTRIBUTES.valuePrefix}${digest}`;
export const errorAttribute = (digest: string): string => `${SPEED_ATTRIBUTES.errorPrefix}${digest}`;
export const visitorAttribute = (digest: string): string => `${SPEED_ATTRIBUTES.visitorPrefix}${digest}`;
/** What one visitor hash adds to an item at most: a 16-digit number (1 byte per two digits, plus 1). */
export const VISITOR_HASH_BYTES = 9;

/** Whether an attribute name is a value's count (`c` + digest), as opposed to the item's own attributes. */
/**
 * Value buckets per dimension: a cell's values are split by digest into this many chains of items, so that a
 * minute holds up to buckets × (size limit / value bytes) values before a new generation stores a value again.
 * A layout constant: a replay must route every record to the item it went to before.
 */
export const VALUE_BUCKETS: Readonly<Record<CountDimension, number>> = {
  total: 1,
  url: 4,
  country: 1,
  browser: 1,
  status: 1,
  referrer: 2,
  source: 1,
  utm_source: 1,
  utm_medium: 1,
  utm_campaign: 2,
  device: 1,
  os: 1,
};

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The bucket of a value among `buckets` (a power of two up to 64), from the first character of its digest. */
export const valueBucket = (digest: string, buckets: number): number =>
  buckets === 1 ? 0 : BASE64URL.indexOf(digest[0]!) % buckets;

export const isCountAttribute = (name: string): boolean =>
  name.length === DIGEST_CHARS + 1 && name.startsWith(SPEED_ATTRIBUTES.countPrefix);

/**
 * What one value adds to an item at most, in DynamoDB's size accounting: its two attribute names, the value's
 * UTF-8 bytes, and a count of up to 9 digits (a number takes 1 byte per two digits plus 1).
 */
export const valueEntryBytes = (valueUtf8Bytes: number): number =>
  2 * (DIGEST_CHARS + 1) + valueUtf8Bytes + 6;

export {
  GENERATION_DIGITS,
  generationSortKey,
  speedGenerationPrefix,
  speedGenerationSortKey,
  speedPartitionKey,
} from '../keys.js';

/**
 * Kinesis sequence numbers are decimal strings of up to 129 digits; DynamoDB numbers keep only 38 digits.
 * Left-padded to a fixed width, string order equals numeric order, so conditions can compare them.
 */
export const SEQUENCE_WIDTH = 129;
export const padSequence = (sequenceNumber: string): string => sequenceNumber.padStart(SEQUENCE_WIDTH, '0');

/** Epoch seconds after which a minute's items are expired: the minute's end plus the retention. */
export const expiresAtFor = (minuteMs: number, retentionHours: number): number =>
  Math.floor((minuteMs + MINUTE_MS + retentionHours * HOUR_MS) / 1000);

/**
 * How long after its clock an invocation may still write: Lambda's longest timeout. Records whose items expire
 * sooner are not written, so no write lands on a minute whose generations TTL may be deleting.
 */
export const WRITE_WINDOW_SECONDS = 15 * 60;

export { TOTAL_VALUE };
