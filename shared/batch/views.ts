import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { allLimited } from '../concurrency.js';
import { describeError, isTransient } from '../aws-errors.js';
import { queryAll } from '../dynamodb.js';
import type { CountQuery, CountRow } from '../counts.js';
import type { ViewRow } from '../sql/index.js';
import { KEY_RANGE_END, viewKeys, type ViewGranularity } from '../keys.js';
import { bucketStarts } from '../time.js';

/**
 * Batch views in DynamoDB. Hourly items are grouped by (dimension, day), daily items by (dimension, month):
 *   hour: pk = `hour#<dimension>#<YYYY-MM-DD>`, sk = `<YYYY-MM-DDTHH>#<value key>`
 *   day:  pk = `day#<dimension>#<YYYY-MM>`,     sk = `<YYYY-MM-DD>#<value key>`
 * (keys from shared/keys.ts; `v` holds the whole value)
 * so a query reads one partition per day (hourly) or per month (daily). Rows are rewritten in place: a
 * recomputed hour's counts only ever grow with late events, so a reader sees either the earlier or the
 * later exact count of a finished hour.
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
      ...viewKeys(granularity, row.dimension, row.bucketMs, row.value),
      b: row.bucketMs,
      v: row.value,
      n: row.views,
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
  query: CountQuery<ViewGranularity>,
): Promise<CountRow[]> {
  const { dimension, fromMs, toMs, granularity } = query;
  if (toMs <= fromMs) return [];
  const partitions = new Map<string, { lo: string; hi: string }>();
  for (const start of bucketStarts(fromMs, toMs, granularity)) {
    const { pk, sk } = viewKeys(granularity, dimension, start, '');
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
        ProjectionExpression: 'b, v, n',
        ExpressionAttributeValues: { ':pk': pk, ':lo': lo, ':hi': `${hi}${KEY_RANGE_END}` },
      },
      deps.onRequest,
    );
    for (const item of items)
      rows.push({ bucketMs: item.b as number, value: item.v as string, count: item.n as number });
  });
  return rows.sort((a, b) => a.bucketMs - b.bucketMs || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
}
