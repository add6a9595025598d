import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { allLimited } from '../../shared/concurrency.js';
import { DEFAULT_SETTINGS } from '../../shared/resources.js';
import { TOTAL_VALUE } from '../../shared/counts.js';
import { writeTotals } from '../../shared/batch/views.js';
import { hourRuns } from '../../shared/batch/run.js';
import { decode, encode as encodeSketch, unionAll, type VisitorSketch } from '../../shared/sketch/index.js';
import { collectRows, type SqlEngine, type ViewRow } from '../../shared/sql/index.js';
import { dayBucket, HOUR_MS, hourPartitionPath } from '../../shared/time.js';
import {
  DAY_ROW,
  digestOf,
  FIRST_CHUNK_ROWS,
  lookupKey,
  manifestKey,
  objectKey,
  objectKeys,
  runOf,
  shardCount,
  valueShard,
  visitorKey,
  type LookupRow,
  type Manifest,
  type StoredRankedRow,
  type StoreRow,
  type ViewStoreDeps,
  type VisitorRow,
} from '../../shared/views/format.js';
import { getJson, readManifest } from '../../shared/views/reader.js';
import type { DayUpdateResult } from '../../shared/views/writer.js';

/**
 * The previous design of a batch run's view writing, kept as the bench's baseline (bench/flood.ts): the whole
 * query result in one array, and each day rebuilt in memory (every row of the day read back, re-sharded,
 * ranked and serialized at once). The text is that of commit 7efda3c (shared/batch/run.ts computeHours and
 * shared/views/store.ts readDay/updateDay, now shared/views/writer.ts), with only its imports changed.
 */

/** The baseline predates sites: it keeps the default site's views. */
const SITE = DEFAULT_SETTINGS.defaultSite;

interface InMemoryDayUpdate {
  readonly dimension: string;
  readonly dayMs: number;
  readonly hours: readonly number[];
  readonly rows: readonly StoreRow[];
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
/**
 * Replaces the rows of some hours of a day and rewrites the objects whose content changed. Nothing is
 * written when the recomputed hours hold the same counts as before.
 */
export async function updateDayInMemory(
  deps: ViewStoreDeps,
  update: InMemoryDayUpdate,
): Promise<DayUpdateResult> {
  const { dimension, dayMs } = update;
  const previous = await readManifest(deps, SITE, dimension, dayMs);
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
    const shard = valueShard(row.value, shards);
    const hour = (row.hourMs - dayMs) / HOUR_MS;
    byShard[shard]!.push([row.value, hour, row.views, row.errors]);
    if (!row.visitors) continue;
    visitorsByShard[shard]!.push([row.value, hour, encodeSketch(row.visitors)]);
    dayVisitors.set(row.value, [...(dayVisitors.get(row.value) ?? []), row.visitors]);
  }
  for (const [value, sketches] of dayVisitors)
    visitorsByShard[valueShard(value, shards)]!.push([value, DAY_ROW, encodeSketch(unionAll(sketches))]);
  // Objects by content digest: only those the previous manifest does not name are gzip'd and written.
  const before = new Set(previous ? objectKeys(previous) : []);
  const fresh: { key: string; body: Buffer }[] = [];
  let objects = 0;
  const addObject = (kind: 'l' | 'r' | 'u', index: number, value: unknown): string => {
    const json = JSON.stringify(value);
    const digest = digestOf(json);
    const key = objectKey(SITE, dimension, dayMs, kind, index, digest);
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
    runOf(byShard[valueShard(value, shards)]!, value).map(
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
    site: SITE,
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
        Item: { ...manifestKey(SITE, dimension, dayMs), ...manifest },
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

/** The previous computeHours: every row of every hour collected, then each day of each dimension rebuilt. */
export async function computeHoursInMemory(
  engine: SqlEngine,
  store: ViewStoreDeps,
  hours: readonly number[],
  version: string,
): Promise<{ rowsWritten: number; objectsWritten: number; rows: number }> {
  const rows: ViewRow[] = [];
  for (const run of hourRuns(hours)) {
    const partitions = run.hours.map((h) => hourPartitionPath(h));
    for (const row of await collectRows(
      engine.query('hourly_views', [SITE, run.dt, run.fromHour, run.toHour], partitions),
    ))
      rows.push(row);
  }
  const totals = await writeTotals(
    { documents: store.documents, tableName: store.tableName },
    SITE,
    hours,
    rows.filter((r) => r.dimension === 'total' && r.value === TOTAL_VALUE),
    version,
  );
  const days = new Map<string, { dimension: string; dayMs: number; hours: number[]; rows: ViewRow[] }>();
  const dimensions = new Set(rows.filter((r) => r.dimension !== 'total').map((r) => r.dimension));
  for (const hourMs of hours) {
    for (const dimension of dimensions) {
      const dayMs = dayBucket(hourMs);
      const key = `${dimension}@${dayMs}`;
      const day = days.get(key) ?? { dimension, dayMs, hours: [], rows: [] };
      day.hours.push(hourMs);
      days.set(key, day);
    }
  }
  for (const row of rows) {
    if (row.dimension === 'total') continue;
    days.get(`${row.dimension}@${dayBucket(row.bucketMs)}`)!.rows.push(row);
  }
  let objectsWritten = 0;
  for (const day of days.values()) {
    const result = await updateDayInMemory(store, {
      dimension: day.dimension,
      dayMs: day.dayMs,
      hours: day.hours,
      rows: day.rows.map((r) => ({
        hourMs: r.bucketMs,
        value: r.value,
        views: r.views,
        errors: r.errors,
        ...(r.visitors ? { visitors: r.visitors } : {}),
      })),
    });
    objectsWritten += result.objectsWritten + (result.manifestWritten ? 1 : 0);
  }
  return { rowsWritten: totals.written, objectsWritten, rows: rows.length };
}
