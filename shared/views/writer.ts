import { appendFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { DeleteObjectsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { allLimited } from '../concurrency.js';
import { decode, encode as encodeSketch, unionAll } from '../sketch/index.js';
import { HOUR_MS } from '../time.js';
import {
  LineReader,
  RowSpill,
  SPILL_PARTITIONS,
  valueHash,
  type RowSpillOptions,
  type SpilledRow,
  type StoredSketch,
} from './spill.js';
import {
  DAY_ROW,
  digestOf,
  FIRST_CHUNK_ROWS,
  lookupKey,
  manifestKey,
  objectKey,
  objectKeys,
  shardCount,
  visitorKey,
  type LookupRow,
  type Manifest,
  type RankedRow,
  type StoredRankedRow,
  type StoreRow,
  type ViewStoreDeps,
  type VisitorRow,
} from './format.js';
import { getJson, readManifest } from './reader.js';

/** Writing the view store (shared/views/format.ts): a day rebuilt from its recomputed hours, and garbage deleted. */

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
  readonly site: string;
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
    private readonly site: string,
    private readonly dimension: string,
    private readonly dayMs: number,
    private readonly before: ReadonlySet<string>,
  ) {}

  /** The object's digest; its PUT is under way (or not needed) when this resolves. */
  async add(kind: 'l' | 'r' | 'u', index: number, value: unknown): Promise<string> {
    const json = JSON.stringify(value);
    const digest = digestOf(json);
    const key = objectKey(this.site, this.dimension, this.dayMs, kind, index, digest);
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
  const { site, dimension, dayMs } = update;
  const previous = await readManifest(deps, site, dimension, dayMs);
  const recomputed = new Set(update.hours);
  // Stored rows are hours of the day (0-23, see LookupRow): when all 24 are recomputed, none is kept.
  const everyHour = Array.from({ length: 24 }, (_, hour) => dayMs + hour * HOUR_MS).every((hourMs) =>
    recomputed.has(hourMs),
  );
  const own = !(update.rows instanceof RowSpill);
  const spill = update.rows instanceof RowSpill ? update.rows : new RowSpill(update.spill);
  try {
    if (own) for (const row of update.rows as Iterable<StoreRow>) spillRow(spill, dayMs, row);
    // Nothing stored and nothing to store (a site without page views that day): no empty objects.
    if (!previous && spill.count === 0)
      return { objectsWritten: 0, objectsKept: 0, manifestWritten: false, replaced: [] };
    if (previous && !everyHour) await spillKept(deps, previous, recomputed, spill);

    const shards = shardCount(spill.count);
    const groups = Math.min(shards, SPILL_PARTITIONS);
    const withVisitors = spill.withSketch > 0;
    const before = new Set(previous ? objectKeys(previous) : []);
    const writer = new ObjectWriter(deps, site, dimension, dayMs, before);
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

    const manifest: Manifest = { site, dimension, dayMs, lookup, visitors, rank, rows: spill.count, values };
    const after = new Set(objectKeys(manifest));
    const changed = writer.written > 0 || before.size !== after.size;
    if (changed) {
      deps.onRequest?.({ kind: 'put' });
      await deps.documents.send(
        new PutCommand({
          TableName: deps.tableName,
          Item: { ...manifestKey(site, dimension, dayMs), ...manifest },
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
