import { hash as digestOf } from 'node:crypto';
import type { CountDimension } from './counts.js';
import { dayKey, hourBucket, hourKey, monthKey, minuteKey } from './time.js';
import { fitsUtf8Bytes, utf8Prefix } from './utf8.js';

/**
 * Key building for every DynamoDB table that holds dimension values (speed counters and batch views).
 * A dimension value can be longer than a key allows (a url may be 2,048 UTF-8 bytes; a sort key holds at
 * most 1,024), so keys carry a bounded form of the value and items keep the whole value in an attribute.
 *
 * The bounded form of a value is the value itself when it fits in `VALUE_KEY_BYTES` UTF-8 bytes, otherwise
 * a prefix of it (cut on a code point), a space, and a 132-bit digest of the whole value:
 * - a bounded form never equals a short value: accepted values contain no whitespace (urls, tokens, digits);
 * - two long values share a bounded form only if their SHA-256 digests agree in 132 bits: about 2^66
 *   values before a chance collision, and a crafted one needs a SHA-256 prefix collision.
 */

/** DynamoDB's key limits, in UTF-8 bytes (developer guide, "Service, account, and table quotas"). */
export const DYNAMODB_LIMITS = {
  partitionKeyBytes: 2048,
  sortKeyBytes: 1024,
  itemBytes: 400 * 1024,
} as const;

/** The most UTF-8 bytes a dimension value takes inside a key. */
export const VALUE_KEY_BYTES = 512;
/** Base64url characters of the digest: 22 × 6 = 132 bits. */
export const DIGEST_CHARS = 22;
/** Kinesis shard ids are at most 128 characters (ASCII). */
export const MAX_SHARD_ID_BYTES = 128;

/** The bounded form of a dimension value inside a key (see the module comment). */
export function valueKey(value: string): string {
  if (fitsUtf8Bytes(value, VALUE_KEY_BYTES)) return value;
  return `${utf8Prefix(value, VALUE_KEY_BYTES - DIGEST_CHARS - 1)} ${valueDigest(value)}`;
}

/**
 * 22 base64url characters (132 bits) of the SHA-256 of a value: what a long value's key form ends with, and
 * the name of a value's attributes inside a speed item. A crafted collision needs a SHA-256 prefix collision.
 */
export const valueDigest = (value: string): string =>
  // The one-shot crypto.hash(), as in shared/sketch/hll.ts: 0.3 µs against createHash()'s 0.7 µs on short urls.
  digestOf('sha256', value, 'base64url').slice(0, DIGEST_CHARS);

/** The highest string in DynamoDB's (UTF-8 byte) order: ends a `BETWEEN` over a key prefix. */
export const KEY_RANGE_END = '\u{10FFFF}';

/**
 * Speed counters: one Query reads an hour of a dimension of a site, e.g. `example.com#url#2026-11-25T12`. A site id
 * holds no `#` (shared/event.ts), so no two sites share a partition.
 */
export const speedPartitionKey = (site: string, dimension: CountDimension, minuteMs: number): string =>
  `${site}#${dimension}#${hourKey(hourBucket(minuteMs))}`;

/** Digits of a speed item's generation: fixed width, so that string order is numeric order. */
export const GENERATION_DIGITS = 4;

/**
 * Speed counters: the sort keys of the generations of one (minute, shard, value bucket) start with this; values
 * live inside the items as attributes. Shard ids hold no `#`, so the key is unambiguous.
 */
export const speedGenerationPrefix = (minuteMs: number, shardId: string, bucket: number): string =>
  `${minuteKey(minuteMs)}#${shardId}#b${bucket}#g`;

/** The sort key of one generation, from its cell's speedGenerationPrefix: for writers that hold the prefix. */
export const generationSortKey = (skPrefix: string, generation: number): string =>
  `${skPrefix}${String(generation).padStart(GENERATION_DIGITS, '0')}`;

/** Speed counters: one item per (minute, shard, bucket, generation), e.g. `2026-11-25T12:34#shardId-000000000001#b5#g0003`. */
export const speedGenerationSortKey = (
  minuteMs: number,
  shardId: string,
  bucket: number,
  generation: number,
): string => generationSortKey(speedGenerationPrefix(minuteMs, shardId, bucket), generation);

export type ViewGranularity = 'hour' | 'day';

/**
 * Batch views: hourly rows grouped by (site, dimension, day), daily rows by (site, dimension, month), so a query
 * reads one partition per day (hourly) or per month (daily) of one site.
 */
export function viewKeys(
  site: string,
  granularity: ViewGranularity,
  dimension: string,
  bucketMs: number,
  value: string,
): { pk: string; sk: string } {
  return granularity === 'hour'
    ? { pk: `hour#${site}#${dimension}#${dayKey(bucketMs)}`, sk: `${hourKey(bucketMs)}#${valueKey(value)}` }
    : { pk: `day#${site}#${dimension}#${monthKey(bucketMs)}`, sk: `${dayKey(bucketMs)}#${valueKey(value)}` };
}

/** The batch views table's item of one site's span (shared/batch/sites.ts): its first and last hour with page views. */
export const siteSpanKey = (site: string): { pk: string; sk: string } => ({ pk: 'site', sk: site });

/** Where the sort keys of one view bucket start: `sk BETWEEN viewBucketPrefix(..) AND ..KEY_RANGE_END`. */
export const viewBucketPrefix = (granularity: ViewGranularity, bucketMs: number): string =>
  `${granularity === 'hour' ? hourKey(bucketMs) : dayKey(bucketMs)}#`;

/** Speed rollup blocks (shared/speed/rollup.ts): one Query reads an hour of a site. */
export const rollupPartitionKey = (site: string, hourMs: number): string =>
  `rollup#${site}#${hourKey(hourBucket(hourMs))}`;

/**
 * A rollup block's sort key: its shard and the padded first and last sequence numbers it holds. A replayed batch
 * writes the same key with the same rows; a batch split differently writes other keys, which readers reconcile.
 */
export const rollupSortKey = (shardId: string, firstPadded: string, lastPadded: string): string =>
  `${shardId}#${firstPadded}#${lastPadded}`;

/** Batch record blocks (shared/batch/cube.ts): a month's manifests in one partition, a day per item. */
export const cubeManifestKeys = (site: string, dayMs: number): { pk: string; sk: string } => ({
  pk: `cube#${site}#${monthKey(dayMs)}`,
  sk: dayKey(dayMs),
});
