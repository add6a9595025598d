import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
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
import {
  LineReader,
  RowSpill,
  SPILL_PARTITIONS,
  valueHash,
  type RowSpillOptions,
  type SpilledRow,
  type StoredSketch,
} from './spill.js';

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

/** The shard of a value among `shards` (a power of two): by a hash of the value. */
export function shardOf(value: string, shards: number): number {
  return valueHash(value) % shards;
}

/** Lookup shards for a day of `rows` rows: a power of two, about SHARD_ROWS rows each. */
export const shardCount = (rows: number): number => {
  let shards = 1;
  while (shards * SHARD_ROWS < rows) shards *= 2;
  return shards;
};

export const manifestKey = (dimension: string, dayMs: number) => ({
  pk: `store#${dimension}#${monthKey(dayMs)}`,
  sk: dayKey(dayMs),
});

export const objectKey = (
  dimension: string,
  dayMs: number,
  kind: 'l' | 'r' | 'u',
  index: number,
  digest: string,
) => `${PREFIXES.batchViews}${dimension}/dt=${dayKey(dayMs)}/${kind}${index}-${digest}.json.gz`;

export const lookupKey = (m: Manifest, shard: number) =>
  objectKey(m.dimension, m.dayMs, 'l', shard, m.lookup[shard]!);
export const rankKey = (m: Manifest, chunk: number) =>
  objectKey(m.dimension, m.dayMs, 'r', chunk, m.rank[chunk]!.digest);
export const visitorKey = (m: Manifest, shard: number) =>
  objectKey(m.dimension, m.dayMs, 'u', shard, m.visitors[shard]!);

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

export async function getJson<T>(deps: ViewStoreDeps, key: string): Promise<T> {
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

/** The day's stored rows outside the `skipped` hours (hour starts) into a spill, shard by shard. */
async function spillKept(
  deps: ViewStoreDeps,
  manifest: Manifest,
  skipped: ReadonlySet<number>,
  spill: RowSpill,
): Promise<void> {
  await allLimited(
    manifest.lookup.map((_, shard) => shard),
    16,
    async (shard) => {
      const [counts, visitors] = await Promise.all([
        getJson<LookupRow[]>(deps, lookupKey(manifest, shard)),
        manifest.visitors.length ? getJson<VisitorRow[]>(deps, visitorKey(manifest, shard)) : [],
      ]);
      const sketches = new Map<string, StoredSketch>();
      for (const [value, hour, sketch] of visitors)
        if (hour !== DAY_ROW) sketches.set(`${hour}\n${value}`, sketch);
      for (const [value, hour, views, errors] of counts) {
        if (skipped.has(manifest.dayMs + hour * HOUR_MS)) continue;
        const sketch = sketches.get(`${hour}\n${value}`);
        spill.add(sketch === undefined ? [value, hour, views, errors] : [value, hour, views, errors, sketch]);
      }
    },
  );
}

/** A row of a recomputed hour into a day's spill (rows without page views are not stored). */
export function spillRow(spill: RowSpill, dayMs: number, row: StoreRow): void {
  if (row.views <= 0) return;
  const hour = (row.hourMs - dayMs) / HOUR_MS;
  spill.add(
    row.visitors
      ? [row.value, hour, row.views, row.errors, encodeSketch(row.visitors)]
      : [row.value, hour, row.views, row.errors],
  );
}

export interface DayUpdate {
  readonly dimension: string;
  readonly dayMs: number;
  /** The hours recomputed: their rows replace whatever the day held for them. */
  readonly hours: readonly number[];
  /**
   * The recomputed hours' rows: a spill the caller filled (`spillRow`; a batch run streams query results into
   * one) or a list. The day's other rows join them in the same spill.
   */
  readonly rows: RowSpill | Iterable<StoreRow>;
  /** Where a list's rows spill. */
  readonly spill?: RowSpillOptions;
  /** Most rows in a ranked chunk. @default RANK_CHUNK_MAX_ROWS */
  readonly maxChunkRows?: number;
}

export interface DayUpdateResult {
  readonly objectsWritten: number;
  readonly objectsKept: number;
  readonly manifestWritten: boolean;
  /** Objects the new manifest no longer names: delete them once no reader can still hold the old one. */
  readonly replaced: string[];
}

/** Most rows in one ranked chunk after the head: chunks grow 4× from 256 up to this. */
export const RANK_CHUNK_MAX_ROWS = 65_536;

const byValueThenHour = (
  a: readonly [string, number, ...unknown[]],
  b: readonly [string, number, ...unknown[]],
) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]);
/** Rank order: day count descending, ties by value. */
const byRank = (a: RankedRow, b: RankedRow) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** Writes a day's objects as they are built: only those the previous manifest does not name, 16 at a time. */
class ObjectWriter {
  objects = 0;
  written = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;

  constructor(
    private readonly deps: ViewStoreDeps,
    private readonly dimension: string,
    private readonly dayMs: number,
    private readonly before: ReadonlySet<string>,
  ) {}

  /** The object's digest; its PUT is under way (or not needed) when this resolves. */
  async add(kind: 'l' | 'r' | 'u', index: number, value: unknown): Promise<string> {
    const json = JSON.stringify(value);
    const digest = digestOf(json);
    const key = objectKey(this.dimension, this.dayMs, kind, index, digest);
    this.objects += 1;
    if (this.before.has(key)) return digest;
    while (this.inFlight.size >= 16) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
    const body = gzipSync(json);
    this.written += 1;
    const put = (async () => {
      this.deps.onRequest?.({ kind: 'put', bytes: body.byteLength });
      await this.deps.s3.send(
        new PutObjectCommand({
          Bucket: this.deps.bucket,
          Key: key,
          Body: body,
          ContentType: 'application/json',
          ContentEncoding: 'gzip',
        }),
      );
    })()
      .catch((error: unknown) => void (this.failure ??= error))
      .finally(() => this.inFlight.delete(put));
    this.inFlight.add(put);
    return digest;
  }

  /** Waits for every PUT; throws the first failure. */
  async done(): Promise<void> {
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
  }
}

/** The head values of a day's ranking, with their hourly rows: the best `size` offered so far. */
class HeadValues {
  readonly rows: [string, number, (readonly [number, number, number])[]][] = [];
  constructor(private readonly size: number) {}

  wants(value: string, views: number): boolean {
    const worst = this.rows[this.rows.length - 1];
    return this.rows.length < this.size || byRank([value, views], [worst![0], worst![1]]) < 0;
  }

  offer(value: string, views: number, hours: (readonly [number, number, number])[]): void {
    if (!this.wants(value, views)) return;
    let lo = 0;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (byRank([this.rows[mid]![0], this.rows[mid]![1]], [value, views]) < 0) lo = mid + 1;
      else hi = mid;
    }
    this.rows.splice(lo, 0, [value, views, hours]);
    if (this.rows.length > this.size) this.rows.pop();
  }
}

/** Sorted runs of ranked rows merged into one ranking (k-way, with a binary heap). */
function* mergeRuns(runs: readonly (() => RankedRow | undefined)[]): Generator<RankedRow> {
  const heap: { row: RankedRow; run: number }[] = [];
  const less = (i: number, j: number) => byRank(heap[i]!.row, heap[j]!.row) < 0;
  const swap = (i: number, j: number) => ([heap[i], heap[j]] = [heap[j]!, heap[i]!]);
  const push = (row: RankedRow | undefined, run: number) => {
    if (row === undefined) return;
    heap.push({ row, run });
    for (let i = heap.length - 1; i > 0 && less(i, (i - 1) >> 1); i = (i - 1) >> 1) swap(i, (i - 1) >> 1);
  };
  runs.forEach((next, run) => push(next(), run));
  while (heap.length > 0) {
    const { row, run } = heap[0]!;
    yield row;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && less(l, m)) m = l;
        if (r < heap.length && less(r, m)) m = r;
        if (m === i) break;
        swap(i, m);
        i = m;
      }
    }
    push(runs[run]!(), run);
  }
}

/**
 * Replaces the rows of some hours of a day and rewrites the objects whose content changed. Nothing is
 * written when the recomputed hours hold the same counts as before.
 *
 * Memory stays bounded whatever the day holds: its rows (the recomputed hours' and the day's others, read
 * back shard by shard) go into a spill split by a hash of the value; the lookup and visitor shards are built
 * one group of spill parts at a time (a shard's rows are all in one group), each group's values ranked into a
 * sorted run, and the runs merged into the ranked chunks as they are written. Objects are PUT as they are
 * built, and the manifest, which names them, only after every PUT.
 */
export async function updateDay(deps: ViewStoreDeps, update: DayUpdate): Promise<DayUpdateResult> {
  const { dimension, dayMs } = update;
  const previous = await readManifest(deps, dimension, dayMs);
  const recomputed = new Set(update.hours);
  // Stored rows are hours of the day (0-23, see LookupRow): when all 24 are recomputed, none is kept.
  const everyHour = Array.from({ length: 24 }, (_, hour) => dayMs + hour * HOUR_MS).every((hourMs) =>
    recomputed.has(hourMs),
  );
  const own = !(update.rows instanceof RowSpill);
  const spill = update.rows instanceof RowSpill ? update.rows : new RowSpill(update.spill);
  try {
    if (own) for (const row of update.rows as Iterable<StoreRow>) spillRow(spill, dayMs, row);
    if (previous && !everyHour) await spillKept(deps, previous, recomputed, spill);

    const shards = shardCount(spill.count);
    const groups = Math.min(shards, SPILL_PARTITIONS);
    const withVisitors = spill.withSketch > 0;
    const before = new Set(previous ? objectKeys(previous) : []);
    const writer = new ObjectWriter(deps, dimension, dayMs, before);
    const lookup = new Array<string>(shards);
    const visitors = new Array<string>(withVisitors ? shards : 0);
    const head = new HeadValues(FIRST_CHUNK_ROWS);
    const runs: (() => RankedRow | undefined)[] = [];
    for (let group = 0; group < groups; group += 1) {
      const byShard = new Map<number, SpilledRow[]>();
      for (const row of spill.rowsOf(groups, group)) {
        const shard = valueHash(row[0]) % shards;
        const list = byShard.get(shard);
        if (list) list.push(row);
        else byShard.set(shard, [row]);
      }
      const ranked: RankedRow[] = [];
      for (let shard = group; shard < shards; shard += groups) {
        const rows = (byShard.get(shard) ?? []).sort(byValueThenHour);
        byShard.delete(shard);
        lookup[shard] = await writer.add(
          'l',
          shard,
          rows.map(([value, hour, views, errors]): LookupRow => [value, hour, views, errors]),
        );
        const visitorRows: VisitorRow[] = [];
        // Each value's run of rows (sorted by value then hour): its day total, day sketch and head hours.
        for (let i = 0; i < rows.length;) {
          const value = rows[i]![0];
          let end = i;
          let views = 0;
          const sketches: StoredSketch[] = [];
          for (; end < rows.length && rows[end]![0] === value; end += 1) {
            const [, hour, count, , sketch] = rows[end]!;
            views += count;
            if (sketch !== undefined) {
              visitorRows.push([value, hour, sketch]);
              sketches.push(sketch);
            }
          }
          if (sketches.length > 0)
            visitorRows.push([value, DAY_ROW, encodeSketch(unionAll(sketches.map((s) => decode(s))))]);
          ranked.push([value, views]);
          if (head.wants(value, views))
            head.offer(
              value,
              views,
              rows.slice(i, end).map(([, hour, count, errors]) => [hour, count, errors] as const),
            );
          i = end;
        }
        if (withVisitors) visitors[shard] = await writer.add('u', shard, visitorRows);
      }
      ranked.sort(byRank);
      runs.push(sortedRun(spill, group, ranked));
    }

    // Ranked chunks: 256, 1,024, 4,096, … rows, at most RANK_CHUNK_MAX_ROWS each; the head carries hours.
    const headHours = new Map(head.rows.map(([value, , hours]) => [value, hours]));
    const rank: { digest: string; rows: number }[] = [];
    let chunk: StoredRankedRow[] = [];
    let size = FIRST_CHUNK_ROWS;
    const emit = async () => {
      rank.push({ digest: await writer.add('r', rank.length, chunk), rows: chunk.length });
      chunk = [];
      size = Math.min(size * 4, update.maxChunkRows ?? RANK_CHUNK_MAX_ROWS);
    };
    let values = 0;
    for (const [value, views] of mergeRuns(runs)) {
      values += 1;
      chunk.push(rank.length === 0 ? [value, views, headHours.get(value)!] : [value, views]);
      if (chunk.length >= size) await emit();
    }
    if (chunk.length > 0 || rank.length === 0) await emit();
    await writer.done();

    const manifest: Manifest = { dimension, dayMs, lookup, visitors, rank, rows: spill.count, values };
    const after = new Set(objectKeys(manifest));
    const changed = writer.written > 0 || before.size !== after.size;
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
      objectsWritten: writer.written,
      objectsKept: writer.objects - writer.written,
      manifestWritten: changed,
      replaced: [...before].filter((key) => !after.has(key)),
    };
  } finally {
    if (own) spill.dispose();
  }
}

/** A group's ranked values as a run the merge reads one row at a time: from disk once the spill is on disk. */
function sortedRun(spill: RowSpill, group: number, ranked: RankedRow[]): () => RankedRow | undefined {
  const file = spill.runFile(`rank-${group}.jsonl`);
  if (!file) {
    let i = 0;
    return () => ranked[i++];
  }
  const lines: string[] = [];
  for (const row of ranked) {
    lines.push(JSON.stringify(row));
    if (lines.length >= 4096) {
      appendFileSync(file, lines.join('\n') + '\n');
      lines.length = 0;
    }
  }
  appendFileSync(file, lines.join('\n') + (lines.length ? '\n' : ''));
  ranked.length = 0;
  const reader = new LineReader<RankedRow>(file);
  return () => reader.next();
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
