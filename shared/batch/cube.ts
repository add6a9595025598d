import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DIMENSIONS } from '../event.js';
import type { FilterTally } from '../filters/aggregate.js';
import type { Block } from '../filters/block.js';
import { BlockBuilder, compressBlock, decodeBlock } from '../filters/block.js';
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
}

export interface CubeStoreDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly documents: DynamoDBDocumentClient;
  /** The batch-views table. */
  readonly tableName: string;
  readonly onRequest?: (request: { kind: 'get' | 'put' | 'query'; bytes?: number }) => void;
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

async function readManifest(
  deps: CubeStoreDeps,
  site: string,
  dayMs: number,
): Promise<Record<string, CubeHourEntry>> {
  deps.onRequest?.({ kind: 'get' });
  const { Item } = await deps.documents.send(
    new GetCommand({ TableName: deps.tableName, Key: cubeManifestKeys(site, dayMs) }),
  );
  return (Item?.hours as Record<string, CubeHourEntry> | undefined) ?? {};
}

/**
 * Replaces the computed hours of one day in the cube: writes the hour objects whose content changed, then the
 * day's manifest. Returns the objects written and the keys it replaced (deleted later, after readers are done).
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
  const entries = await readManifest(deps, site, dayMs);
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
      const body = compressBlock(builder.encode());
      const digest = createHash('sha256').update(body).digest('base64url').slice(0, 22);
      const key = cubeObjectKey(site, hourMs, digest);
      if (old?.key === key) objectsKept += 1;
      else {
        deps.onRequest?.({ kind: 'put', bytes: body.length });
        await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: key, Body: body }));
        objectsWritten += 1;
      }
      next[hh] = { key, rows: builder.rows, bytes: body.length };
    }
    if (old && old.key !== next[hh]?.key) replaced.push(old.key);
  }
  const changed = JSON.stringify(next) !== JSON.stringify(entries);
  if (changed) {
    deps.onRequest?.({ kind: 'put' });
    await deps.documents.send(
      new PutCommand({ TableName: deps.tableName, Item: { ...cubeManifestKeys(site, dayMs), hours: next } }),
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

/** The cube's hour objects of [fromMs, toMs) (hour-aligned), from the days' manifests. */
export async function cubeHours(
  deps: CubeStoreDeps,
  fromMs: number,
  toMs: number,
  site: string,
): Promise<{ hourMs: number; entry: CubeHourEntry }[]> {
  if (toMs <= fromMs) return [];
  const found: { hourMs: number; entry: CubeHourEntry }[] = [];
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
    for (const item of items) {
      const dayMs = Date.parse(`${item.sk as string}T00:00:00Z`);
      for (const [hh, entry] of Object.entries(item.hours as Record<string, CubeHourEntry>)) {
        const hourMs = dayMs + Number(hh) * HOUR_MS;
        if (hourMs >= fromMs && hourMs < toMs) found.push({ hourMs, entry });
      }
    }
  });
  return found.sort((a, b) => a.hourMs - b.hourMs);
}

/** Adds the batch part of [fromMs, toMs) (hour-aligned) to a tally. */
export async function tallyCube(
  deps: CubeReaderDeps,
  fromMs: number,
  toMs: number,
  tally: FilterTally,
  site: string,
): Promise<{ objects: number; bytes: number; cached: number }> {
  const hours = await cubeHours(deps, fromMs, toMs, site);
  const stats = { objects: 0, bytes: 0, cached: 0 };
  const blocks = new Map<string, Block>();
  await allLimited(hours, deps.concurrency ?? 32, async ({ entry }) => {
    const cached = deps.cache?.get(entry.key);
    if (cached) {
      stats.cached += 1;
      blocks.set(entry.key, cached);
      return;
    }
    const object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: entry.key }));
    const body = await object.Body!.transformToByteArray();
    deps.onRequest?.({ kind: 'get', bytes: body.length });
    stats.objects += 1;
    stats.bytes += body.length;
    const block = decodeBlock(body);
    deps.cache?.set(entry.key, block, body.length * 4);
    blocks.set(entry.key, block);
  });
  for (const { hourMs, entry } of hours) tally.add(blocks.get(entry.key)!, hourMs);
  return stats;
}
