import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DeleteObjectsCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { allLimited, Limiter } from '../concurrency.js';
import { queryAll } from '../dynamodb.js';
import { dayKey, KEY_RANGE_END, monthKey } from '../keys.js';
import { PREFIXES } from '../resources.js';
import {
  decode,
  empty as emptySketch,
  encode as encodeSketch,
  unionAll,
  type VisitorSketch,
} from '../sketch/index.js';
import { DAY_MS, HOUR_MS } from '../time.js';

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
 *   pk = `store#<dimension>#<YYYY-MM>`, sk = `<YYYY-MM-DD>` (in the batch-views table)
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

/** FNV-1a over UTF-16 code units: cheap, stable, and only balances shards (no security role). */
export function shardOf(value: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i += 1) {
    hash ^= value.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

const shardCount = (rows: number): number => {
  let shards = 1;
  while (shards * SHARD_ROWS < rows) shards *= 2;
  return shards;
};

const manifestKey = (dimension: string, dayMs: number) => ({
  pk: `store#${dimension}#${monthKey(dayMs)}`,
  sk: dayKey(dayMs),
});

const objectKey = (dimension: string, dayMs: number, kind: 'l' | 'r' | 'u', index: number, digest: string) =>
  `${PREFIXES.batchViews}${dimension}/dt=${dayKey(dayMs)}/${kind}${index}-${digest}.json.gz`;

export const lookupKey = (m: Manifest, shard: number) =>
  objectKey(m.dimension, m.dayMs, 'l', shard, m.lookup[shard]!);
export const rankKey = (m: Manifest, chunk: number) =>
  objectKey(m.dimension, m.dayMs, 'r', chunk, m.rank[chunk]!.digest);
export const visitorKey = (m: Manifest, shard: number) =>
  objectKey(m.dimension, m.dayMs, 'u', shard, m.visitors[shard]!);

/** The digest that names an object: of its JSON, so an object the day already holds is known before gzip. */
const digestOf = (json: string): string => createHash('sha256').update(json).digest('base64url').slice(0, 16);

/** An encoded visitor sketch in a stored row: sorted hashes, or base64 registers. */
type StoredSketch = number[] | string;
/** Lookup rows as stored: [value, hour of the day 0-23, views, errors], sorted by value then hour. */
type LookupRow = [string, number, number, number];
/**
 * Visitor rows as stored, apart from the counts so that a count never reads a sketch: [value, hour, sketch]
 * per hour, and [value, DAY_ROW, sketch] for the whole day (the union of the hours), sorted by value then hour.
 */
type VisitorRow = [string, number, StoredSketch];
const DAY_ROW = 24;

/** Ranked rows: [value, views of the day]. */
export type RankedRow = readonly [string, number];
/**
 * Ranked rows as stored: the head chunk (the day's top 256 values) also carries each value's hourly rows
 * [hour, views, errors], so the counts of the values most queries ask for cost no lookup at all.
 */
type StoredRankedRow = readonly [string, number, (readonly [number, number, number])[]?];

/** Rows of `value` in a shard sorted by value: binary search to the first, then the run. */
function runOf<R extends readonly [string, ...unknown[]]>(rows: readonly R[], value: string): R[] {
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

async function getJson<T>(deps: ViewStoreDeps, key: string): Promise<T> {
  const response = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
  const bytes = await response.Body!.transformToByteArray();
  deps.onRequest?.({ kind: 'get', bytes: bytes.byteLength });
  return JSON.parse(gunzipSync(bytes).toString('utf8')) as T;
}

export async function readManifest(
  deps: ViewStoreDeps,
  dimension: string,
  dayMs: number,
): Promise<Manifest | undefined> {
  deps.onRequest?.({ kind: 'query' });
  const { Item } = await deps.documents.send(
    new GetCommand({ TableName: deps.tableName, Key: manifestKey(dimension, dayMs), ConsistentRead: true }),
  );
  return Item ? toManifest(Item) : undefined;
}

const toManifest = (item: Record<string, unknown>): Manifest => ({
  dimension: item.dimension as string,
  dayMs: item.dayMs as number,
  lookup: item.lookup as string[],
  visitors: (item.visitors as string[] | undefined) ?? [],
  rank: item.rank as Manifest['rank'],
  rows: item.rows as number,
  values: item.values as number,
});

/** Manifests of the days [fromDayMs, toDayMs): one Query per month. */
export async function readManifests(
  deps: ViewStoreDeps,
  dimension: string,
  fromDayMs: number,
  toDayMs: number,
): Promise<Map<number, Manifest>> {
  const months = new Map<string, { lo: string; hi: string }>();
  for (let day = fromDayMs; day < toDayMs; day += DAY_MS) {
    const { pk, sk } = manifestKey(dimension, day);
    const range = months.get(pk);
    if (range) range.hi = sk;
    else months.set(pk, { lo: sk, hi: sk });
  }
  const manifests = new Map<number, Manifest>();
  await allLimited([...months.entries()], 8, async ([pk, { lo, hi }]) => {
    const items = await queryAll(
      deps.documents,
      {
        TableName: deps.tableName,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
        ExpressionAttributeValues: { ':pk': pk, ':lo': lo, ':hi': `${hi}${KEY_RANGE_END}` },
      },
      () => deps.onRequest?.({ kind: 'query' }),
    );
    for (const item of items) {
      const manifest = toManifest(item);
      manifests.set(manifest.dayMs, manifest);
    }
  });
  return manifests;
}

/** The rows of a day outside the `skipped` hours (hour starts), read from its lookup and visitor shards. */
async function readDay(
  deps: ViewStoreDeps,
  manifest: Manifest,
  skipped: ReadonlySet<number>,
): Promise<StoreRow[]> {
  const rows: StoreRow[] = [];
  const sketches = new Map<string, VisitorSketch>();
  await allLimited(
    manifest.lookup.map((_, shard) => shard),
    32,
    async (shard) => {
      const [counts, visitors] = await Promise.all([
        getJson<LookupRow[]>(deps, lookupKey(manifest, shard)),
        manifest.visitors.length ? getJson<VisitorRow[]>(deps, visitorKey(manifest, shard)) : [],
      ]);
      for (const [value, hour, sketch] of visitors)
        if (hour !== DAY_ROW && !skipped.has(manifest.dayMs + hour * HOUR_MS))
          sketches.set(`${hour}\n${value}`, decode(sketch));
      for (const [value, hour, views, errors] of counts) {
        const hourMs = manifest.dayMs + hour * HOUR_MS;
        if (skipped.has(hourMs)) continue;
        const visitors = sketches.get(`${hour}\n${value}`);
        rows.push({
          hourMs,
          value,
          views,
          errors,
          ...(visitors ? { visitors } : {}),
        });
      }
    },
  );
  return rows;
}

export interface DayUpdate {
  readonly dimension: string;
  readonly dayMs: number;
  /** The hours recomputed: their rows replace whatever the day held for them. */
  readonly hours: readonly number[];
  readonly rows: readonly StoreRow[];
}

export interface DayUpdateResult {
  readonly objectsWritten: number;
  readonly objectsKept: number;
  readonly manifestWritten: boolean;
  /** Objects the new manifest no longer names: delete them once no reader can still hold the old one. */
  readonly replaced: string[];
}

/**
 * Replaces the rows of some hours of a day and rewrites the objects whose content changed. Nothing is
 * written when the recomputed hours hold the same counts as before.
 */
export async function updateDay(deps: ViewStoreDeps, update: DayUpdate): Promise<DayUpdateResult> {
  const { dimension, dayMs } = update;
  const previous = await readManifest(deps, dimension, dayMs);
  const recomputed = new Set(update.hours);
  // Stored rows are hours of the day (0-23, see LookupRow): when all 24 are recomputed, none is kept.
  const everyHour = Array.from({ length: 24 }, (_, hour) => dayMs + hour * HOUR_MS).every((hourMs) =>
    recomputed.has(hourMs),
  );
  const kept = previous && !everyHour ? await readDay(deps, previous, recomputed) : [];
  const rows = [...kept, ...update.rows.filter((r) => r.views > 0)];

  // Lookup shards: rows by value then hour, split by a hash of the value; visitor shards alike.
  const shards = shardCount(rows.length);
  const byShard: LookupRow[][] = Array.from({ length: shards }, () => []);
  const visitorsByShard: VisitorRow[][] = Array.from({ length: shards }, () => []);
  const dayVisitors = new Map<string, VisitorSketch[]>();
  for (const row of rows) {
    const shard = shardOf(row.value, shards);
    const hour = (row.hourMs - dayMs) / HOUR_MS;
    byShard[shard]!.push([row.value, hour, row.views, row.errors]);
    if (!row.visitors) continue;
    visitorsByShard[shard]!.push([row.value, hour, encodeSketch(row.visitors)]);
    dayVisitors.set(row.value, [...(dayVisitors.get(row.value) ?? []), row.visitors]);
  }
  for (const [value, sketches] of dayVisitors)
    visitorsByShard[shardOf(value, shards)]!.push([value, DAY_ROW, encodeSketch(unionAll(sketches))]);
  // Objects by content digest: only those the previous manifest does not name are gzip'd and written.
  const before = new Set(previous ? objectKeys(previous) : []);
  const fresh: { key: string; body: Buffer }[] = [];
  let objects = 0;
  const addObject = (kind: 'l' | 'r' | 'u', index: number, value: unknown): string => {
    const json = JSON.stringify(value);
    const digest = digestOf(json);
    const key = objectKey(dimension, dayMs, kind, index, digest);
    objects += 1;
    if (!before.has(key)) fresh.push({ key, body: gzipSync(json) });
    return digest;
  };
  const byValueThenHour = (a: [string, number, ...unknown[]], b: [string, number, ...unknown[]]) =>
    a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1];
  const lookup = byShard.map((shard, index) => {
    shard.sort(byValueThenHour);
    return addObject('l', index, shard);
  });
  const visitors = dayVisitors.size
    ? visitorsByShard.map((shard, index) => {
        shard.sort(byValueThenHour);
        return addObject('u', index, shard);
      })
    : [];

  // Ranked chunks: day totals by value, descending, ties by value.
  const totals = new Map<string, number>();
  for (const row of rows) totals.set(row.value, (totals.get(row.value) ?? 0) + row.views);
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  // A head value's hourly rows: its run in its lookup shard (sorted above by value then hour).
  const headRow = (value: string, views: number): StoredRankedRow => [
    value,
    views,
    runOf(byShard[shardOf(value, shards)]!, value).map(
      ([, hour, hourViews, errors]) => [hour, hourViews, errors] as const,
    ),
  ];
  const rank: { digest: string; rows: number }[] = [];
  for (let start = 0, size = FIRST_CHUNK_ROWS; start < ranked.length || rank.length === 0; size *= 4) {
    const chunk: StoredRankedRow[] = ranked
      .slice(start, start + size)
      .map(([value, views]): StoredRankedRow => (start === 0 ? headRow(value, views) : [value, views]));
    rank.push({ digest: addObject('r', rank.length, chunk), rows: chunk.length });
    start += size;
    if (start >= ranked.length) break;
  }

  const manifest: Manifest = {
    dimension,
    dayMs,
    lookup,
    visitors,
    rank,
    rows: rows.length,
    values: totals.size,
  };
  await allLimited(fresh, 16, async (object) => {
    deps.onRequest?.({ kind: 'put', bytes: object.body.byteLength });
    await deps.s3.send(
      new PutObjectCommand({
        Bucket: deps.bucket,
        Key: object.key,
        Body: object.body,
        ContentType: 'application/json',
        ContentEncoding: 'gzip',
      }),
    );
  });
  const after = new Set(objectKeys(manifest));
  const changed = fresh.length > 0 || before.size !== after.size;
  if (changed) {
    deps.onRequest?.({ kind: 'put' });
    await deps.documents.send(
      new PutCommand({
        TableName: deps.tableName,
        Item: { ...manifestKey(dimension, dayMs), ...manifest },
      }),
    );
  }
  return {
    objectsWritten: fresh.length,
    objectsKept: objects - fresh.length,
    manifestWritten: changed,
    replaced: [...before].filter((key) => !after.has(key)),
  };
}

export function objectKeys(manifest: Manifest): string[] {
  return [
    ...manifest.lookup.map((_, shard) => lookupKey(manifest, shard)),
    ...manifest.visitors.map((_, shard) => visitorKey(manifest, shard)),
    ...manifest.rank.map((_, chunk) => rankKey(manifest, chunk)),
  ];
}

/** Deletes objects no manifest names any more (1,000 per request). */
export async function deleteObjects(deps: ViewStoreDeps, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    deps.onRequest?.({ kind: 'delete' });
    await deps.s3.send(
      new DeleteObjectsCommand({
        Bucket: deps.bucket,
        Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true },
      }),
    );
  }
}

/** Parsed objects by key: they never change, so a warm reader keeps them. */
export class ObjectCache {
  private readonly entries = new Map<string, Promise<unknown>>();
  constructor(private readonly maxEntries = 4000) {}

  get<T>(key: string, load: () => Promise<T>): Promise<T> {
    let entry = this.entries.get(key) as Promise<T> | undefined;
    if (entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
      return entry;
    }
    entry = load();
    this.entries.set(key, entry);
    entry.catch(() => this.entries.delete(key));
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return entry;
  }
}

/** Reads a day's ranked chunks and lookup shards, through a cache, with at most 32 GETs in flight. */
export class DayReader {
  private readonly gets = new Limiter(32);
  constructor(
    private readonly deps: ViewStoreDeps,
    private readonly cache: ObjectCache,
  ) {}

  private object<T>(key: string): Promise<T> {
    return this.cache.get(key, () => this.gets.run(() => getJson<T>(this.deps, key)));
  }

  /** The first `depth` ranked rows of a day (or all of them), reading whole chunks. */
  async ranked(manifest: Manifest, depth: number): Promise<{ rows: RankedRow[]; complete: boolean }> {
    const rows: RankedRow[] = [];
    let chunk = 0;
    while (chunk < manifest.rank.length && rows.length < depth) {
      const key = rankKey(manifest, chunk);
      for (const [value, views] of await this.object<StoredRankedRow[]>(key)) rows.push([value, views]);
      chunk += 1;
    }
    return { rows: rows.slice(0, depth), complete: chunk >= manifest.rank.length && rows.length <= depth };
  }

  /** The hourly rows (counts) of the given values on a day: from the head chunk, else one read per shard. */
  async lookup(manifest: Manifest, values: readonly string[]): Promise<Map<string, StoreRow[]>> {
    const found = new Map<string, StoreRow[]>();
    const head = new Map(
      (await this.object<StoredRankedRow[]>(rankKey(manifest, 0))).map(([value, , hours]) => [value, hours]),
    );
    const row = (value: string, [hour, views, errors]: readonly [number, number, number]): StoreRow => ({
      hourMs: manifest.dayMs + hour * HOUR_MS,
      value,
      views,
      errors: errors ?? 0,
    });
    const shards = new Map<number, string[]>();
    for (const value of values) {
      const hours = head.get(value);
      if (hours)
        found.set(
          value,
          hours.map((h) => row(value, h)),
        );
      else {
        const shard = shardOf(value, manifest.lookup.length);
        shards.set(shard, [...(shards.get(shard) ?? []), value]);
      }
    }
    await allLimited([...shards.entries()], 16, async ([shard, wanted]) => {
      const rows = await this.object<LookupRow[]>(lookupKey(manifest, shard));
      for (const value of wanted)
        found.set(
          value,
          runOf(rows, value).map(([, hour, views, errors]) => row(value, [hour, views, errors])),
        );
    });
    return found;
  }

  /**
   * The given values' visitors on a day within [fromMs, toMs): the day's sketch when the range covers the whole
   * day, else the union of the hours in range (for a day the range cuts). Only those sketches are decoded.
   * One read per visitor shard the values fall in; counts never pay for these.
   */
  async visitorSketches(
    manifest: Manifest,
    values: readonly string[],
    fromMs: number,
    toMs: number,
  ): Promise<Map<string, VisitorSketch>> {
    const whole = manifest.dayMs >= fromMs && manifest.dayMs + DAY_MS <= toMs;
    // Per value: the day row, or the hours in range (by hour start, the last row of an hour winning).
    const picked = new Map<string, { day?: StoredSketch; hours: Map<number, StoredSketch> }>();
    for (const value of values) picked.set(value, { hours: new Map() });
    const shards = new Map<number, string[]>();
    if (manifest.visitors.length > 0)
      for (const value of values) {
        const shard = shardOf(value, manifest.visitors.length);
        shards.set(shard, [...(shards.get(shard) ?? []), value]);
      }
    await allLimited([...shards.entries()], 16, async ([shard, wanted]) => {
      const rows = await this.object<VisitorRow[]>(visitorKey(manifest, shard));
      for (const value of wanted) {
        const entry = picked.get(value)!;
        for (const [, hour, sketch] of runOf(rows, value)) {
          if (hour === DAY_ROW) {
            if (whole) entry.day = sketch;
            continue;
          }
          const hourMs = manifest.dayMs + hour * HOUR_MS;
          if (!whole && hourMs >= fromMs && hourMs < toMs) entry.hours.set(hourMs, sketch);
        }
      }
    });
    const found = new Map<string, VisitorSketch>();
    for (const [value, { day, hours }] of picked)
      found.set(
        value,
        whole
          ? day === undefined
            ? emptySketch()
            : decode(day)
          : unionAll([...hours.values()].map((sketch) => decode(sketch))),
      );
    return found;
  }
}
