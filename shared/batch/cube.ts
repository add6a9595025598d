import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DIMENSIONS, type Dimension } from '../event.js';
import type { FilterTally } from '../filters/aggregate.js';
import { Block, BlockBuilder, compressBlock, decodeBlock } from '../filters/block.js';
import {
  boundOf,
  buildHeads,
  decodeHeadPart,
  HEAD_FILTERS,
  type DayBlocks,
  type HeadPart,
  type HeadsBound,
  type HeadsEntry,
  type HeadsIndex,
} from './heads.js';
import { allLimited } from '../concurrency.js';
import { queryAll } from '../dynamodb.js';
import { cubeManifestKeys } from '../keys.js';
import { PREFIXES } from '../resources.js';
import { dayBucket, dayKey, HOUR_MS, hourKey } from '../time.js';
import type { ViewRow } from '../sql/index.js';

/**
 * The filter cube of the batch layer (docs/filters.md): per (site, hour) one record block (shared/filters/block.ts)
 * of the hour's page views grouped by every dimension value and visitor hash, as an S3 object named by a digest of
 * its content, and per (site, day) one manifest item in the batch-views table that names the day's hour objects:
 *   pk = `cube#<site>#<YYYY-MM>`, sk = `<YYYY-MM-DD>`, hours = { HH: { key, rows, bytes } }
 * A filtered query reads the manifests of its range (one Query per month) and the hour objects it covers.
 * The rows come from the batch views' own query (shared/sql/hourly_views.sql, dimension `cube`), so the batch run
 * scans the master dataset once for both.
 */

export const CUBE_DIMENSION = 'cube';
const SEPARATOR = String.fromCharCode(31);

export interface CubeHourEntry {
  readonly key: string;
  readonly rows: number;
  readonly bytes: number;
  /**
   * The object's parts, in order, as JSON `[[bytes, rows, v0, v1, …], …]` with `vk` the part's values of
   * CUBE_SORT[k] (an array) or 0 when it holds more than PART_VALUES_MAX of them. Absent: one part, the object.
   */
  readonly parts?: string;
}

/**
 * The dimensions a cube hour is sorted by. Its rows are cut into parts where the first or second changes (once a
 * part holds enough rows) and at a row limit, each part a block brotli'd alone, so a filter on these dimensions
 * reads only the parts that hold its values: `country:DE` a country's share of the hour, and
 * `country:DE&browser:FF` a share of that (docs/filters.md). The heads are per value of each (shared/batch/heads.ts).
 */
export const CUBE_SORT: readonly Dimension[] = HEAD_FILTERS;
/** A part names its values of a CUBE_SORT dimension when it holds at most this many. */
export const PART_VALUES_MAX = 8;
/** A part holds at least this share of its hour's rows before a change of country or browser cuts it: at most 64 such cuts. */
const MIN_PART_SHARE = 64;
/** A part holds at most this share (or 16,384 rows, if more): at most 48 cuts for size. */
const MAX_PART_SHARE = 48;

export interface CubePart {
  readonly offset: number;
  readonly bytes: number;
  readonly rows: number;
  /** Per CUBE_SORT dimension, the part's values, or undefined when it may hold any. */
  readonly values: readonly (readonly string[] | undefined)[];
}

/** The parts of an hour object, from its manifest entry. */
export function partsOf(entry: CubeHourEntry): CubePart[] {
  if (entry.parts === undefined)
    return [{ offset: 0, bytes: entry.bytes, rows: entry.rows, values: CUBE_SORT.map(() => undefined) }];
  let offset = 0;
  return (JSON.parse(entry.parts) as [number, number, ...(string[] | 0)[]][]).map(
    ([bytes, rows, ...values]) => {
      const part = { offset, bytes, rows, values: values.map((v) => (v === 0 ? undefined : v)) };
      offset += bytes;
      return part;
    },
  );
}

/** An hour's rows as one object of sorted parts, and its manifest entry's `parts`. */
function encodeHour(
  builder: BlockBuilder,
  partRows = {
    min: Math.max(2048, Math.ceil(builder.rows / MIN_PART_SHARE)),
    max: Math.max(16_384, Math.ceil(builder.rows / MAX_PART_SHARE)),
  },
): { body: Buffer; parts: string; blocks: Block[] } {
  const split = builder.split(CUBE_SORT, partRows.min, partRows.max);
  const raws = split.map((part) => part.encode());
  const bodies = raws.map((raw) => compressBlock(raw));
  const parts = split.map((part, i) => [
    bodies[i]!.length,
    part.rows,
    ...CUBE_SORT.map((d) => {
      const values = part.valuesOf(d);
      return values.length <= PART_VALUES_MAX ? values.sort() : 0;
    }),
  ]);
  return {
    body: Buffer.concat(bodies),
    parts: JSON.stringify(parts),
    blocks: raws.map((raw) => new Block(raw)),
  };
}

export interface CubeStoreDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly documents: DynamoDBDocumentClient;
  /** The batch-views table. */
  readonly tableName: string;
  readonly onRequest?: (request: { kind: 'get' | 'put' | 'query'; bytes?: number }) => void;
  /** Rows per part, for tests that want many parts of a small hour. @default from the hour's rows */
  readonly partRows?: { readonly min: number; readonly max: number };
}

export class CubeRowError extends Error {
  override readonly name = 'CubeRowError';
}

/** Collects the `cube` rows of the batch views' query, by hour. */
export class CubeRows {
  readonly hours = new Map<number, BlockBuilder>();

  add(row: ViewRow): void {
    const parts = row.value.split(SEPARATOR);
    if (parts.length !== DIMENSIONS.length + 1)
      throw new CubeRowError(`a cube row has ${parts.length} fields, not ${DIMENSIONS.length + 1}`);
    const hash = parts.pop()!;
    let builder = this.hours.get(row.bucketMs);
    if (!builder) this.hours.set(row.bucketMs, (builder = new BlockBuilder()));
    builder.add({ values: parts, hash: hash === '' ? undefined : Number(hash), count: row.views });
  }
}

export const cubeObjectKey = (site: string, hourMs: number, digest: string): string =>
  `${PREFIXES.batchViews}cube/site=${site}/dt=${dayKey(hourMs)}/${hourKey(hourMs).slice(11)}-${digest}.blk`;

export const headsObjectKey = (site: string, dayMs: number, digest: string): string =>
  `${PREFIXES.batchViews}cube/site=${site}/dt=${dayKey(dayMs)}/heads-${digest}.json.br`;

async function readManifest(
  deps: CubeStoreDeps,
  site: string,
  dayMs: number,
): Promise<{ hours: Record<string, CubeHourEntry>; heads?: HeadsEntry }> {
  deps.onRequest?.({ kind: 'get' });
  const { Item } = await deps.documents.send(
    new GetCommand({ TableName: deps.tableName, Key: cubeManifestKeys(site, dayMs) }),
  );
  return {
    hours: (Item?.hours as Record<string, CubeHourEntry> | undefined) ?? {},
    ...(Item?.heads ? { heads: Item.heads as HeadsEntry } : {}),
  };
}

/**
 * The bytes of a cube object, whole or of `range` (inclusive, one range per GET: "Amazon S3 doesn't support
 * retrieving multiple ranges of data per GET request", GetObject, Amazon S3 API Reference), counted as a GET.
 */
async function readObject(
  deps: CubeStoreDeps,
  key: string,
  range?: { readonly first: number; readonly last: number },
): Promise<Uint8Array> {
  const object = await deps.s3.send(
    new GetObjectCommand({
      Bucket: deps.bucket,
      Key: key,
      ...(range ? { Range: `bytes=${range.first}-${range.last}` } : {}),
    }),
  );
  const body = await object.Body!.transformToByteArray();
  deps.onRequest?.({ kind: 'get', bytes: body.length });
  return body;
}

/** An hour object's parts, fetched whole and decoded. */
async function readHourBlocks(deps: CubeStoreDeps, entry: CubeHourEntry): Promise<Block[]> {
  const body = await readObject(deps, entry.key);
  return partsOf(entry).map((part) => decodeBlock(body.subarray(part.offset, part.offset + part.bytes)));
}

/**
 * Replaces the computed hours of one day in the cube: writes the hour objects whose content changed and the day's
 * heads (shared/batch/heads.ts, rebuilt from all its hours when one changed), then the day's manifest. Returns the
 * objects written and the keys it replaced (deleted later, after readers are done).
 */
export async function updateCubeDay(
  deps: CubeStoreDeps,
  dayMs: number,
  hours: readonly number[],
  rows: CubeRows,
  site: string,
): Promise<{ objectsWritten: number; objectsKept: number; replaced: string[] }> {
  for (const hourMs of rows.hours.keys())
    if (!hours.includes(hourMs))
      throw new CubeRowError(`cube rows for an hour not computed: ${hourKey(hourMs)}`);
  const { hours: entries, heads: oldHeads } = await readManifest(deps, site, dayMs);
  const computed = new Map<number, Block[]>();
  const next: Record<string, CubeHourEntry> = { ...entries };
  const replaced: string[] = [];
  let objectsWritten = 0;
  let objectsKept = 0;
  for (const hourMs of hours) {
    if (dayBucket(hourMs) !== dayMs)
      throw new CubeRowError(`hour ${hourKey(hourMs)} is not of day ${dayKey(dayMs)}`);
    const hh = hourKey(hourMs).slice(11);
    const old = entries[hh];
    const builder = rows.hours.get(hourMs);
    delete next[hh];
    if (builder && builder.rows > 0) {
      const { body, parts, blocks } = encodeHour(builder, deps.partRows);
      computed.set(hourMs, blocks);
      const digest = createHash('sha256').update(body).digest('base64url').slice(0, 22);
      const key = cubeObjectKey(site, hourMs, digest);
      if (old?.key === key) objectsKept += 1;
      else {
        deps.onRequest?.({ kind: 'put', bytes: body.length });
        await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: key, Body: body }));
        objectsWritten += 1;
      }
      next[hh] = { key, rows: builder.rows, bytes: body.length, parts };
    }
    if (old && old.key !== next[hh]?.key) replaced.push(old.key);
  }
  const hoursChanged = JSON.stringify(next) !== JSON.stringify(entries);
  let heads = oldHeads;
  if (hoursChanged || !oldHeads) {
    heads = undefined;
    const stored = Object.entries(next);
    if (stored.length > 0) {
      const day: DayBlocks[] = [];
      await allLimited(stored, 4, async ([hh, entry]) => {
        const hourMs = dayMs + Number(hh) * HOUR_MS;
        day.push({ hourMs, blocks: computed.get(hourMs) ?? (await readHourBlocks(deps, entry)) });
      });
      const { body, index } = buildHeads(
        dayMs,
        day.sort((a, b) => a.hourMs - b.hourMs),
      );
      const key = headsObjectKey(
        site,
        dayMs,
        createHash('sha256').update(body).digest('base64url').slice(0, 22),
      );
      if (oldHeads?.key !== key) {
        deps.onRequest?.({ kind: 'put', bytes: body.length });
        await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: key, Body: body }));
        objectsWritten += 1;
      }
      heads = { key, index: JSON.stringify(index) };
    }
    if (oldHeads && oldHeads.key !== heads?.key) replaced.push(oldHeads.key);
  }
  if (hoursChanged || heads?.key !== oldHeads?.key) {
    deps.onRequest?.({ kind: 'put' });
    await deps.documents.send(
      new PutCommand({
        TableName: deps.tableName,
        Item: { ...cubeManifestKeys(site, dayMs), hours: next, ...(heads ? { heads } : {}) },
      }),
    );
  }
  return { objectsWritten, objectsKept, replaced };
}

/** Decoded hour blocks, kept across warm invocations: objects are immutable (named by their content). */
export class BlockCache {
  private readonly blocks = new Map<string, { block: Block; bytes: number }>();
  private bytes = 0;
  constructor(private readonly maxBytes = 256 * 1024 * 1024) {}

  get(key: string): Block | undefined {
    const entry = this.blocks.get(key);
    if (!entry) return undefined;
    this.blocks.delete(key);
    this.blocks.set(key, entry);
    return entry.block;
  }

  set(key: string, block: Block, bytes: number): void {
    if (this.blocks.has(key)) return;
    this.blocks.set(key, { block, bytes });
    this.bytes += bytes;
    for (const [oldest, entry] of this.blocks) {
      if (this.bytes <= this.maxBytes) break;
      this.blocks.delete(oldest);
      this.bytes -= entry.bytes;
    }
  }
}

export interface CubeReaderDeps extends CubeStoreDeps {
  readonly cache?: BlockCache;
  /** Objects fetched at once. @default 32 */
  readonly concurrency?: number;
}

/** The months of [fromMs, toMs), as the first instant of each. */
function monthsOf(fromMs: number, toMs: number): number[] {
  const months: number[] = [];
  const d = new Date(fromMs);
  let month = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  while (month < toMs) {
    months.push(month);
    const m = new Date(month);
    month = Date.UTC(m.getUTCFullYear(), m.getUTCMonth() + 1, 1);
  }
  return months;
}

/** The cube's day manifests that [fromMs, toMs) (hour-aligned) touches, one Query per month. */
async function cubeDays(
  deps: CubeStoreDeps,
  fromMs: number,
  toMs: number,
  site: string,
): Promise<{ dayMs: number; hours: Record<string, CubeHourEntry>; heads?: HeadsEntry }[]> {
  if (toMs <= fromMs) return [];
  const days: { dayMs: number; hours: Record<string, CubeHourEntry>; heads?: HeadsEntry }[] = [];
  await allLimited(monthsOf(fromMs, toMs), 4, async (monthMs) => {
    const items = await queryAll(
      deps.documents,
      {
        TableName: deps.tableName,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
        ExpressionAttributeValues: {
          ':pk': cubeManifestKeys(site, monthMs).pk,
          ':lo': dayKey(Math.max(monthMs, dayBucket(fromMs))),
          ':hi': dayKey(toMs - 1),
        },
      },
      () => deps.onRequest?.({ kind: 'query' }),
    );
    for (const item of items)
      days.push({
        dayMs: Date.parse(`${item.sk as string}T00:00:00Z`),
        hours: item.hours as Record<string, CubeHourEntry>,
        ...(item.heads ? { heads: item.heads as HeadsEntry } : {}),
      });
  });
  return days.sort((a, b) => a.dayMs - b.dayMs);
}

/** The hours of a day's manifest within [fromMs, toMs). */
function hoursWithin(
  day: { dayMs: number; hours: Record<string, CubeHourEntry> },
  fromMs: number,
  toMs: number,
) {
  return Object.entries(day.hours)
    .map(([hh, entry]) => ({ hourMs: day.dayMs + Number(hh) * HOUR_MS, entry }))
    .filter(({ hourMs }) => hourMs >= fromMs && hourMs < toMs);
}

/** The cube's hour objects of [fromMs, toMs) (hour-aligned), from the days' manifests. */
export async function cubeHours(
  deps: CubeStoreDeps,
  fromMs: number,
  toMs: number,
  site: string,
): Promise<{ hourMs: number; entry: CubeHourEntry }[]> {
  const days = await cubeDays(deps, fromMs, toMs, site);
  return days.flatMap((day) => hoursWithin(day, fromMs, toMs)).sort((a, b) => a.hourMs - b.hourMs);
}

/** Every object the day manifests of [fromMs, toMs) name: hour objects and heads (for garbage checks). */
export async function cubeObjectKeys(deps: CubeStoreDeps, fromMs: number, toMs: number, site: string) {
  const days = await cubeDays(deps, fromMs, toMs, site);
  return days.flatMap((day) => [
    ...Object.values(day.hours).map((entry) => entry.key),
    ...(day.heads ? [day.heads.key] : []),
  ]);
}

/**
 * Adds the batch part of [fromMs, toMs) (hour-aligned) of a breakdown under one `is` filter from the days' heads
 * (shared/batch/heads.ts): one ranged GET per day and filter value. Returns what the heads prove about the values
 * they do not list, or undefined, having added nothing, when a day of the range has no heads for the filter (then
 * the cube answers).
 */
export async function tallyHeads(
  deps: CubeReaderDeps,
  fromMs: number,
  toMs: number,
  tally: FilterTally,
  site: string,
  serve: { readonly by: Dimension; readonly dimension: Dimension; readonly values: readonly string[] },
): Promise<HeadsBound | undefined> {
  const days = await cubeDays(deps, fromMs, toMs, site);
  const wanted: { dayMs: number; key: string; offset: number; bytes: number }[] = [];
  for (const day of days) {
    if (hoursWithin(day, fromMs, toMs).length === 0) continue;
    const of = day.heads && (JSON.parse(day.heads.index) as HeadsIndex)[serve.by]?.[serve.dimension];
    if (!of) return undefined;
    for (const value of serve.values) {
      const at = of.values[value];
      if (at) wanted.push({ dayMs: day.dayMs, key: day.heads!.key, offset: at[0], bytes: at[1] });
      // A value without a part had no rows that day, unless the day's values were capped.
      else if (of.capped) return undefined;
    }
  }
  const parts: { dayMs: number; part: HeadPart }[] = [];
  await allLimited(wanted, deps.concurrency ?? 32, async ({ dayMs, key, offset, bytes }) => {
    const body = await readObject(deps, key, { first: offset, last: offset + bytes - 1 });
    if (body.length !== bytes)
      throw new CubeRowError(`heads object ${key} is shorter than its manifest says`);
    parts.push({ dayMs, part: decodeHeadPart(body) });
  });
  const within = (hourMs: number) => hourMs >= fromMs && hourMs + HOUR_MS <= toMs;
  const bounds = parts.map(({ dayMs, part }) => {
    for (const [hour, views, errors] of part.hours)
      if (within(dayMs + hour * HOUR_MS)) tally.addSum(undefined, dayMs + hour * HOUR_MS, views, errors);
    const listed = new Set<string>();
    for (const [value, ...cells] of part.top) {
      listed.add(value);
      for (let k = 0; k < cells.length; k += 3) {
        const hourMs = dayMs + cells[k]! * HOUR_MS;
        if (within(hourMs)) tally.addSum(value, hourMs, cells[k + 1]!, cells[k + 2]!);
      }
    }
    return { floor: part.floor, listed };
  });
  return boundOf(bounds);
}

/** The byte ranges to fetch for some parts of an object: runs of adjacent parts. */
function rangesOf(parts: readonly CubePart[]): CubePart[][] {
  const ranges: CubePart[][] = [];
  for (const part of parts) {
    const last = ranges.at(-1);
    const end = last ? last.at(-1)! : undefined;
    if (end && end.offset + end.bytes === part.offset) last!.push(part);
    else ranges.push([part]);
  }
  return ranges;
}

/** Ranged GETs per hour object at most; an hour whose parts need more is fetched whole in one GET. */
const MAX_RANGES = 2;

/**
 * Adds the batch part of [fromMs, toMs) (hour-aligned) to a tally: per hour, only the parts whose CUBE_SORT values
 * the tally's filters may admit, fetched as byte ranges (GetObject `Range`, one range per request: "Amazon S3 doesn't
 * support retrieving multiple ranges of data per GET request", Amazon S3 API Reference), or the whole object when
 * they would take more than MAX_RANGES requests.
 */
export async function tallyCube(
  deps: CubeReaderDeps,
  fromMs: number,
  toMs: number,
  tally: FilterTally,
  site: string,
): Promise<{ objects: number; bytes: number; cached: number; parts: number; partsSkipped: number }> {
  const hours = await cubeHours(deps, fromMs, toMs, site);
  const stats = { objects: 0, bytes: 0, cached: 0, parts: 0, partsSkipped: 0 };
  const blocks = new Map<string, Block>();
  const chosenOf: { hourMs: number; keys: string[] }[] = [];
  const work: { key: string; whole: boolean; parts: CubePart[] }[] = [];
  for (const { hourMs, entry } of hours) {
    const all = partsOf(entry);
    const chosen = all.filter((part) =>
      CUBE_SORT.every((d, k) => part.values[k] === undefined || tally.admitsAny(d, part.values[k]!)),
    );
    stats.parts += chosen.length;
    stats.partsSkipped += all.length - chosen.length;
    chosenOf.push({ hourMs, keys: chosen.map((part) => partKey(entry.key, part)) });
    const missing: CubePart[] = [];
    for (const part of chosen) {
      const cached = deps.cache?.get(partKey(entry.key, part));
      if (cached) blocks.set(partKey(entry.key, part), cached);
      else missing.push(part);
    }
    stats.cached += chosen.length - missing.length;
    if (missing.length === 0) continue;
    const ranges = rangesOf(missing);
    if (ranges.length > MAX_RANGES) work.push({ key: entry.key, whole: true, parts: missing });
    else for (const range of ranges) work.push({ key: entry.key, whole: false, parts: range });
  }
  await allLimited(work, deps.concurrency ?? 32, async ({ key, whole, parts }) => {
    const first = whole ? 0 : parts[0]!.offset;
    const last = parts.at(-1)!;
    const body = await readObject(
      deps,
      key,
      whole ? undefined : { first, last: last.offset + last.bytes - 1 },
    );
    stats.objects += 1;
    stats.bytes += body.length;
    for (const part of parts) {
      const at = part.offset - first;
      if (at < 0 || at + part.bytes > body.length)
        throw new CubeRowError(`cube object ${key} is shorter than its manifest says`);
      const block = decodeBlock(body.subarray(at, at + part.bytes));
      deps.cache?.set(partKey(key, part), block, part.bytes * 4);
      blocks.set(partKey(key, part), block);
    }
  });
  for (const { hourMs, keys } of chosenOf) for (const key of keys) tally.add(blocks.get(key)!, hourMs);
  return stats;
}

const partKey = (key: string, part: CubePart): string => `${key}@${part.offset}`;
