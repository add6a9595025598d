import { QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { allLimited } from '../concurrency.js';
import { queryAll } from '../dynamodb.js';
import { TOTAL_VALUE, type CountQuery, type CountRow, type SpeedCountReader } from '../counts.js';
import { bucketStarts, floorTo, HOUR_MS, MINUTE_MS, minuteKey } from '../time.js';
import { KEY_RANGE_END } from '../keys.js';
import {
  SPEED_ATTRIBUTES as A,
  errorAttribute,
  isCountAttribute,
  speedPartitionKey,
  valueAttribute,
  visitorAttribute,
} from './table.js';
import { fromHashes } from '../sketch/index.js';

export interface SpeedReaderDeps {
  readonly documents: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly clock: () => number;
  /** Queries in flight at once. @default 8 */
  readonly concurrency?: number;
  /** Called once per DynamoDB request, for request accounting. */
  readonly onRequest?: () => void;
}

export class SpeedQueryError extends Error {
  override readonly name = 'SpeedQueryError';
}

/**
 * Reads minute counters: one Query (plus pages) per hour of the range, at most `concurrency` in flight,
 * summing the values of every shard's and generation's items and skipping items whose TTL has passed but that
 * DynamoDB has not deleted yet.
 */
export function createSpeedReader(deps: SpeedReaderDeps): SpeedCountReader {
  const queryHour = async (
    site: string,
    dimension: CountQuery['dimension'],
    hourMs: number,
    fromMs: number,
    toMs: number,
    nowSeconds: number,
    add: (minuteMs: number, value: string, count: number, errors: number, hashes?: Iterable<number>) => void,
  ): Promise<void> => {
    const lo = Math.max(fromMs, hourMs);
    const hi = Math.min(toMs, hourMs + HOUR_MS) - MINUTE_MS;
    const items = await queryAll(
      deps.documents,
      {
        TableName: deps.tableName,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
        FilterExpression: '#exp > :now',
        // No projection: value attributes are named by digest, and a projection would not lower the read units.
        ExpressionAttributeNames: { '#exp': A.expiresAt },
        ExpressionAttributeValues: {
          ':pk': speedPartitionKey(site, dimension, hourMs),
          ':lo': `${minuteKey(lo)}#`,
          ':hi': `${minuteKey(hi)}#${KEY_RANGE_END}`,
          ':now': nowSeconds,
        },
      },
      deps.onRequest,
    );
    for (const item of items) {
      const minuteMs = item[A.minute] as number;
      for (const name in item) {
        if (!isCountAttribute(name)) continue;
        const digest = name.slice(A.countPrefix.length);
        const value = item[valueAttribute(digest)];
        if (typeof value !== 'string')
          throw new SpeedQueryError(`speed item ${String(item.sk)} has ${name} without its value`);
        const errors = (item[errorAttribute(digest)] as number | undefined) ?? 0;
        add(
          minuteMs,
          value,
          item[name] as number,
          errors,
          item[visitorAttribute(digest)] as Set<number> | undefined,
        );
      }
    }
  };

  /** The first (oldest, or newest) minute with a live total counter in the first of these hours that has one. */
  const edgeMinute = async (
    site: string,
    hours: readonly number[],
    oldest: boolean,
  ): Promise<number | undefined> => {
    const nowSeconds = deps.clock() / 1000;
    for (const hourMs of hours) {
      // Items past their TTL but not yet deleted are skipped, one page at a time: they are rare and few.
      let start: Record<string, unknown> | undefined;
      do {
        deps.onRequest?.();
        const page = await deps.documents.send(
          new QueryCommand({
            TableName: deps.tableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': speedPartitionKey(site, 'total', hourMs) },
            ScanIndexForward: oldest,
            Limit: 1,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        const item = page.Items?.[0];
        if (item && (item[A.expiresAt] as number) > nowSeconds) return item[A.minute] as number;
        start = item ? page.LastEvaluatedKey : undefined;
      } while (start);
    }
    return undefined;
  };

  return {
    async readCounts(query) {
      const { dimension, fromMs, toMs, granularity } = query;
      if (fromMs % MINUTE_MS !== 0 || toMs % MINUTE_MS !== 0 || toMs < fromMs) {
        throw new SpeedQueryError(`speed reads take whole minutes: [${fromMs}, ${toMs})`);
      }
      const nowSeconds = deps.clock() / 1000;
      const sums = new Map<
        string,
        { bucketMs: number; value: string; count: number; errors: number; hashes?: number[] }
      >();
      const add = (
        minuteMs: number,
        value: string,
        count: number,
        errors: number,
        hashes?: Iterable<number>,
      ) => {
        const bucketMs = floorTo(minuteMs, granularity);
        const key = `${bucketMs}\n${value}`;
        let row = sums.get(key);
        if (!row) sums.set(key, (row = { bucketMs, value, count: 0, errors: 0 }));
        row.count += count;
        row.errors += errors;
        if (query.visitors && hashes) (row.hashes ??= []).push(...hashes);
      };
      await allLimited(bucketStarts(fromMs, toMs, 'hour'), deps.concurrency ?? 8, (hourMs) =>
        queryHour(query.site, dimension, hourMs, fromMs, toMs, nowSeconds, add),
      );
      return [...sums.values()]
        .filter((row) => row.count > 0)
        .map(({ hashes, ...row }): CountRow =>
          query.visitors ? { ...row, visitors: fromHashes(hashes ?? []) } : row,
        )
        .sort((a, b) => a.bucketMs - b.bucketMs || (a.value < b.value ? -1 : 1));
    },

    async newestMinute(site) {
      const hourMs = floorTo(deps.clock(), 'hour');
      // The total dimension of the current and previous hour: at most two single-item Queries.
      return edgeMinute(site, [hourMs, hourMs - HOUR_MS], false);
    },

    async minuteSpan(site, fromMs, toMs) {
      const hours = bucketStarts(fromMs, toMs, 'hour');
      const firstMs = await edgeMinute(site, hours, true);
      if (firstMs === undefined) return undefined;
      const lastMs = (await edgeMinute(site, [...hours].reverse(), false))!;
      return { firstMs, lastMs };
    },
  };
}

export { TOTAL_VALUE };
