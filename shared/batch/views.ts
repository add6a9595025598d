import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { allLimited } from '../concurrency.js';
import { describeError, isTransient } from '../aws-errors.js';
import { queryAll } from '../dynamodb.js';
import type { CountQuery, CountRow } from '../counts.js';
import type { ViewRow } from '../sql/index.js';
import { KEY_RANGE_END, viewBucketPrefix, viewKeys, type ViewGranularity } from '../keys.js';
import { TOTAL_VALUE } from '../counts.js';
import {
  decode,
  empty as emptySketch,
  encode,
  encodeBinary,
  unionAll,
  type VisitorSketch,
} from '../sketch/index.js';
import { bucketStarts, dayBucket, DAY_MS } from '../time.js';

/**
 * The batch views' totals in DynamoDB (every query reads them; breakdowns live in the view store,
 * shared/views/format.ts). Hourly items are grouped by site and day, daily items by site and month:
 *   hour: pk = `hour#<site>#total#<YYYY-MM-DD>`, sk = `<YYYY-MM-DDTHH>#all`
 *   day:  pk = `day#<site>#total#<YYYY-MM>`,     sk = `<YYYY-MM-DD>#all`
 * (keys from shared/keys.ts) so a query reads one partition per day (hourly) or per month (daily). A row is
 * written only when its count changed; a day's row is the sum of its hours (the view SQL deduplicates within
 * an event hour, so a day is exactly the sum of its hours). Counts only grow with late events, so a reader
 * sees either the earlier or the later exact count of a finished hour.
 */

export type { ViewGranularity };

export interface ViewStoreDeps {
  readonly documents: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly onRequest?: () => void;
}

/** A view row the table refused with an error no retry can fix. */
export interface UnstorableRow {
  readonly granularity: ViewGranularity;
  readonly row: ViewRow;
  readonly error: string;
}

export interface WriteOutcome {
  readonly written: number;
  readonly unstorable: UnstorableRow[];
}

/**
 * Writes view rows with BatchWriteItem (25 per request), re-sending unprocessed items. Throttling and server
 * errors are retried and, if they persist, thrown (the run fails and H stays). A request refused for good
 * (e.g. a validation error) is split into single writes, so that one bad row cannot fail a run for ever:
 * the rows still refused are returned for the dead-letter store.
 */
export async function writeViews(
  deps: ViewStoreDeps,
  granularity: ViewGranularity,
  rows: readonly ViewRow[],
  version: string,
): Promise<WriteOutcome> {
  const items = rows.map((row) => ({
    row,
    item: {
      ...viewKeys(row.site, granularity, row.dimension, row.bucketMs, row.value),
      b: row.bucketMs,
      v: row.value,
      n: row.views,
      e: row.errors,
      ...(row.visitors ? { u: encodeBinary(row.visitors) } : {}),
      version,
    },
  }));
  const chunks: (typeof items)[] = [];
  for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
  const unstorable: UnstorableRow[] = [];
  await allLimited(chunks, 8, async (chunk) => {
    try {
      await batchWrite(
        deps,
        chunk.map((c) => c.item),
      );
    } catch (error) {
      if (isTransient(error)) throw error;
      for (const { row, item } of chunk) {
        try {
          await batchWrite(deps, [item]);
        } catch (single) {
          if (isTransient(single)) throw single;
          unstorable.push({ granularity, row, error: describeError(single) });
        }
      }
    }
  });
  return { written: items.length - unstorable.length, unstorable };
}

async function batchWrite(deps: ViewStoreDeps, items: readonly Record<string, unknown>[]): Promise<void> {
  let requests = items.map((Item) => ({ PutRequest: { Item } }));
  for (let attempt = 0; requests.length > 0; attempt += 1) {
    if (attempt > 8) throw new Error(`batch views: ${requests.length} items still unprocessed after retries`);
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
    deps.onRequest?.();
    const response = await deps.documents.send(
      new BatchWriteCommand({ RequestItems: { [deps.tableName]: requests } }),
    );
    requests = (response.UnprocessedItems?.[deps.tableName] ?? []) as typeof requests;
  }
}

/** Reads view rows for a range: one Query (plus pages) per day (hourly) or month (daily), 8 in flight. */
export async function readViews(
  deps: ViewStoreDeps,
  query: CountQuery<ViewGranularity> & { readonly visitors?: boolean },
): Promise<CountRow[]> {
  const { dimension, fromMs, toMs, granularity } = query;
  if (toMs <= fromMs) return [];
  const partitions = new Map<string, { lo: string; hi: string }>();
  for (const start of bucketStarts(fromMs, toMs, granularity)) {
    const { pk } = viewKeys(query.site, granularity, dimension, start, '');
    const sk = viewBucketPrefix(granularity, start);
    const range = partitions.get(pk);
    if (range) range.hi = sk;
    else partitions.set(pk, { lo: sk, hi: sk });
  }
  const rows: CountRow[] = [];
  await allLimited([...partitions.entries()], 8, async ([pk, { lo, hi }]) => {
    const items = await queryAll(
      deps.documents,
      {
        TableName: deps.tableName,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
        // Visitor sketches are up to 12 KB: read only when asked for.
        ProjectionExpression: query.visitors ? 'b, v, n, e, u' : 'b, v, n, e',
        ExpressionAttributeValues: { ':pk': pk, ':lo': lo, ':hi': `${hi}${KEY_RANGE_END}` },
      },
      deps.onRequest,
    );
    for (const item of items)
      rows.push({
        bucketMs: item.b as number,
        value: item.v as string,
        count: item.n as number,
        errors: (item.e as number | undefined) ?? 0,
        ...(item.u ? { visitors: decode(item.u as Uint8Array) } : {}),
      });
  });
  return rows.sort((a, b) => a.bucketMs - b.bucketMs || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
}

/**
 * Writes a site's total rows of recomputed hours whose count changed, then the rows of their days whose sum
 * changed. Reads one partition per day (its hours) and one item per day (its day row) to compare.
 */
export async function writeTotals(
  deps: ViewStoreDeps,
  site: string,
  hours: readonly number[],
  rows: readonly ViewRow[],
  version: string,
): Promise<WriteOutcome> {
  const empty = (bucketMs: number): ViewRow => ({
    site,
    bucketMs,
    dimension: 'total',
    value: TOTAL_VALUE,
    views: 0,
    errors: 0,
  });
  const computed = new Map(hours.map((h) => [h, empty(h)]));
  for (const row of rows) computed.set(row.bucketMs, row);
  const sketchOf = (r: { visitors?: VisitorSketch }) => JSON.stringify(encode(r.visitors ?? emptySketch()));
  const same = (a: ViewRow, b: CountRow | undefined) =>
    b !== undefined && a.views === b.count && a.errors === (b.errors ?? 0) && sketchOf(a) === sketchOf(b);
  const days = [...new Set(hours.map(dayBucket))];
  const hourWrites: ViewRow[] = [];
  const dayWrites: ViewRow[] = [];
  await allLimited(days, 8, async (dayMs) => {
    const range = { site, dimension: 'total' as const, fromMs: dayMs, toMs: dayMs + DAY_MS, visitors: true };
    const stored = await readViews(deps, { ...range, granularity: 'hour' });
    const asRow = (r: CountRow): ViewRow => ({
      ...empty(r.bucketMs),
      views: r.count,
      errors: r.errors ?? 0,
      ...(r.visitors ? { visitors: r.visitors } : {}),
    });
    const merged = new Map<number, ViewRow>(stored.map((r) => [r.bucketMs, asRow(r)]));
    const storedByHour = new Map(stored.map((r) => [r.bucketMs, r]));
    for (const [hourMs, row] of computed) {
      if (dayBucket(hourMs) !== dayMs || same(row, storedByHour.get(hourMs))) continue;
      if (row.views === 0 && !storedByHour.has(hourMs)) continue;
      merged.set(hourMs, row);
      hourWrites.push(row);
    }
    const [day] = await readViews(deps, { ...range, granularity: 'day' });
    const hoursOfDay = [...merged.values()];
    const sum: ViewRow = {
      ...empty(dayMs),
      views: hoursOfDay.reduce((n, r) => n + r.views, 0),
      errors: hoursOfDay.reduce((n, r) => n + r.errors, 0),
      // A day's visitors are the union of its hours' (never their sum).
      visitors: unionAll(hoursOfDay.map((r) => r.visitors ?? emptySketch())),
    };
    if (!same(sum, day)) dayWrites.push(sum);
  });
  const hourly = await writeViews(deps, 'hour', hourWrites, version);
  const daily = await writeViews(deps, 'day', dayWrites, version);
  return {
    written: hourly.written + daily.written,
    unstorable: [...hourly.unstorable, ...daily.unstorable],
  };
}
