import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { dayKey, monthKey } from '../time.js';
import { PREFIXES } from '../resources.js';
import type { VisitorSketch } from '../sketch/index.js';
import { valueHash, type StoredSketch } from './spill.js';

/**
 * The store of breakdown views (counts per dimension value), built for values without number: a day of a
 * dimension is a set of immutable S3 objects, indexed by one DynamoDB item (its manifest).
 *
 * - Ranked chunks: the day's values by day count, descending, in chunks of 256, 1,024, 4,096, … rows, so a
 *   top-N query reads the head of each day (shared/views/top.ts) instead of every value.
 * - Lookup shards: the day's hourly rows, split by a hash of the value into shards of about 1,000 rows, so
 *   the exact counts of a few values are a few small reads.
 * Objects are gzip'd JSON named by a digest of their content: a rebuilt day writes only the objects whose
 * content changed, and a reader never sees an object change under it. The manifest names them:
 *   pk = `store#<site>#<dimension>#<YYYY-MM>`, sk = `<YYYY-MM-DD>` (in the batch-views table)
 * and its objects live under `batch-views/<site>/<dimension>/dt=<YYYY-MM-DD>/`: each site's days are its own.
 */

export interface StoreRow {
  /** Hour start, epoch ms. */
  readonly hourMs: number;
  readonly value: string;
  readonly views: number;
  /** Page views with status 400 or above. */
  readonly errors: number;
  /** Distinct visitors (absent for rows without visitor hashes). */
  readonly visitors?: VisitorSketch;
}

export interface Manifest {
  readonly site: string;
  readonly dimension: string;
  readonly dayMs: number;
  /** Content digests of the lookup shards (counts), shard i at index i. */
  readonly lookup: readonly string[];
  /** Content digests of the visitor shards, sharded as `lookup`: hourly sketches, and one per value for the day. */
  readonly visitors: readonly string[];
  /** Content digests and row counts of the ranked chunks, in rank order. */
  readonly rank: readonly { readonly digest: string; readonly rows: number }[];
  readonly rows: number;
  readonly values: number;
}

export interface ViewStoreDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly documents: DynamoDBDocumentClient;
  readonly tableName: string;
  /** Called once per request with what it moved, for accounting. */
  readonly onRequest?: (request: { kind: 'get' | 'put' | 'query' | 'delete'; bytes?: number }) => void;
}

export const SHARD_ROWS = 1000;
export const FIRST_CHUNK_ROWS = 256;

/** The shard of a value among `shards` (a power of two): by a hash of the value. */
export function valueShard(value: string, shards: number): number {
  return valueHash(value) % shards;
}

/** Lookup shards for a day of `rows` rows: a power of two, about SHARD_ROWS rows each. */
export const shardCount = (rows: number): number => {
  let shards = 1;
  while (shards * SHARD_ROWS < rows) shards *= 2;
  return shards;
};

export const manifestKey = (site: string, dimension: string, dayMs: number) => ({
  pk: `store#${site}#${dimension}#${monthKey(dayMs)}`,
  sk: dayKey(dayMs),
});

export const objectKey = (
  site: string,
  dimension: string,
  dayMs: number,
  kind: 'l' | 'r' | 'u',
  index: number,
  digest: string,
) => `${PREFIXES.batchViews}${site}/${dimension}/dt=${dayKey(dayMs)}/${kind}${index}-${digest}.json.gz`;

export const lookupKey = (m: Manifest, shard: number) =>
  objectKey(m.site, m.dimension, m.dayMs, 'l', shard, m.lookup[shard]!);
export const rankKey = (m: Manifest, chunk: number) =>
  objectKey(m.site, m.dimension, m.dayMs, 'r', chunk, m.rank[chunk]!.digest);
export const visitorKey = (m: Manifest, shard: number) =>
  objectKey(m.site, m.dimension, m.dayMs, 'u', shard, m.visitors[shard]!);

/** The digest that names an object: of its JSON, so an object the day already holds is known before gzip. */
export const digestOf = (json: string): string =>
  createHash('sha256').update(json).digest('base64url').slice(0, 16);

/** Lookup rows as stored: [value, hour of the day 0-23, views, errors], sorted by value then hour. */
export type LookupRow = [string, number, number, number];
/**
 * Visitor rows as stored, apart from the counts so that a count never reads a sketch: [value, hour, sketch]
 * per hour, and [value, DAY_ROW, sketch] for the whole day (the union of the hours), sorted by value then hour.
 */
export type VisitorRow = [string, number, StoredSketch];
export const DAY_ROW = 24;

/** Ranked rows: [value, views of the day]. */
export type RankedRow = readonly [string, number];
/**
 * Ranked rows as stored: the head chunk (the day's top 256 values) also carries each value's hourly rows
 * [hour, views, errors], so the counts of the values most queries ask for cost no lookup at all.
 */
export type StoredRankedRow = readonly [string, number, (readonly [number, number, number])[]?];

/** Rows of `value` in a shard sorted by value: binary search to the first, then the run. */
export function runOf<R extends readonly [string, ...unknown[]]>(rows: readonly R[], value: string): R[] {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid]![0] < value) lo = mid + 1;
    else hi = mid;
  }
  const run: R[] = [];
  for (let i = lo; i < rows.length && rows[i]![0] === value; i += 1) run.push(rows[i]!);
  return run;
}

export function objectKeys(manifest: Manifest): string[] {
  return [
    ...manifest.lookup.map((_, shard) => lookupKey(manifest, shard)),
    ...manifest.visitors.map((_, shard) => visitorKey(manifest, shard)),
    ...manifest.rank.map((_, chunk) => rankKey(manifest, chunk)),
  ];
}
