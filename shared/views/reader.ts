import { gunzipSync } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { allLimited, Limiter } from '../concurrency.js';
import { queryAll } from '../dynamodb.js';
import { KEY_RANGE_END } from '../keys.js';
import { decode, empty as emptySketch, unionAll, type VisitorSketch } from '../sketch/index.js';
import { DAY_MS, HOUR_MS } from '../time.js';
import type { StoredSketch } from './spill.js';
import {
  DAY_ROW,
  lookupKey,
  manifestKey,
  rankKey,
  runOf,
  valueShard,
  visitorKey,
  type LookupRow,
  type Manifest,
  type RankedRow,
  type StoredRankedRow,
  type StoreRow,
  type ViewStoreDeps,
  type VisitorRow,
} from './format.js';

/** Reading the view store (shared/views/format.ts): manifests, and a day's objects through a cache. */

export async function getJson<T>(deps: ViewStoreDeps, key: string): Promise<T> {
  const response = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
  const bytes = await response.Body!.transformToByteArray();
  deps.onRequest?.({ kind: 'get', bytes: bytes.byteLength });
  return JSON.parse(gunzipSync(bytes).toString('utf8')) as T;
}

export async function readManifest(
  deps: ViewStoreDeps,
  site: string,
  dimension: string,
  dayMs: number,
): Promise<Manifest | undefined> {
  deps.onRequest?.({ kind: 'query' });
  const { Item } = await deps.documents.send(
    new GetCommand({
      TableName: deps.tableName,
      Key: manifestKey(site, dimension, dayMs),
      ConsistentRead: true,
    }),
  );
  return Item ? toManifest(Item) : undefined;
}

const toManifest = (item: Record<string, unknown>): Manifest => ({
  site: item.site as string,
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
  site: string,
  dimension: string,
  fromDayMs: number,
  toDayMs: number,
): Promise<Map<number, Manifest>> {
  const months = new Map<string, { lo: string; hi: string }>();
  for (let day = fromDayMs; day < toDayMs; day += DAY_MS) {
    const { pk, sk } = manifestKey(site, dimension, day);
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
        const shard = valueShard(value, manifest.lookup.length);
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
        const shard = valueShard(value, manifest.visitors.length);
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
