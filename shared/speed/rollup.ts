import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { queryAll } from '../dynamodb.js';
import { dimensionValue, DIMENSIONS } from '../event.js';
import { compressBlock, decodeBlock, encodeRows, type BlockRow } from '../filters/block.js';
import type { FilterTally } from '../filters/aggregate.js';
import { DYNAMODB_LIMITS, rollupPartitionKey, rollupSortKey } from '../keys.js';
import { allLimited } from '../concurrency.js';
import { bucketStarts, floorTo, HOUR_MS, MINUTE_MS } from '../time.js';
import type { CountedRecord } from './aggregate.js';
import { expiresAtFor, padSequence } from './table.js';

/**
 * Rollup blocks: what the speed layer writes beside its counters so that it can answer filtered questions for the
 * minutes since H (docs/filters.md). Per batch, one block per (shard, event hour) holds every record of that hour
 * the batch counts, with all dimensions (shared/filters/block.ts), as one PutItem:
 *   pk = `rollup#<site>#<hour>`, sk = `<shardId>#<first sequence>#<last sequence>` (padded), b = the block.
 *
 * Exactly once on read, not on write: a block holds *every* record of its shard and hour between its first and
 * last sequence numbers (a batch is a contiguous run of its shard), so for one (shard, hour) readers sweep the
 * blocks in order of first sequence number and take from each only the records above the highest one taken so
 * far. A replayed batch rewrites the same item; a batch split otherwise (bisect, a resumed checkpoint) adds
 * overlapping blocks that the sweep cuts. The TTL is the counters' (the hour's last minute's).
 */

export const ROLLUP_ATTRIBUTES = { block: 'b', rows: 'n', expiresAt: 'expiresAt' } as const;

/** Rows per block at most; a block whose compressed form would not fit an item is halved until it does. */
export const ROLLUP_MAX_ROWS = 2000;
/** Compressed bytes a block may take: far enough under the 400 KB item for its keys and attributes. */
export const ROLLUP_MAX_BYTES = DYNAMODB_LIMITS.itemBytes - 8 * 1024;

export interface RollupItem {
  readonly pk: string;
  readonly sk: string;
  readonly hourMs: number;
  /** Padded sequence number of the block's first record: where a retry of the batch must start if the write fails. */
  readonly first: string;
  /** The block's records' sequence numbers (unpadded): what a write refused for good sets aside. */
  readonly sequences: readonly string[];
  readonly rows: number;
  readonly body: Uint8Array;
  readonly expiresAt: number;
}

const rowOf = (record: CountedRecord): BlockRow => ({
  values: DIMENSIONS.map((d) => dimensionValue(record.event, d)),
  hash: record.hash,
  minute: (record.minuteMs % HOUR_MS) / MINUTE_MS,
  sequence: record.sequenceNumber,
});

function blocksOf(
  site: string,
  shardId: string,
  hourMs: number,
  records: readonly CountedRecord[],
  expiresAt: number,
): RollupItem[] {
  const body = compressBlock(encodeRows(records.map(rowOf)));
  if (body.length > ROLLUP_MAX_BYTES && records.length > 1) {
    const half = Math.ceil(records.length / 2);
    return [
      ...blocksOf(site, shardId, hourMs, records.slice(0, half), expiresAt),
      ...blocksOf(site, shardId, hourMs, records.slice(half), expiresAt),
    ];
  }
  const first = padSequence(records[0]!.sequenceNumber);
  const last = padSequence(records[records.length - 1]!.sequenceNumber);
  return [
    {
      pk: rollupPartitionKey(site, hourMs),
      sk: rollupSortKey(shardId, first, last),
      hourMs,
      first,
      sequences: records.map((r) => r.sequenceNumber),
      rows: records.length,
      body,
      expiresAt,
    },
  ];
}

/** The rollup items of a batch's counted records: per (shard, event hour), in sequence order. */
export function rollupItems(records: readonly CountedRecord[], retentionHours: number): RollupItem[] {
  // Per site (an event's own, shared/event.ts), shard and event hour.
  const groups = new Map<
    string,
    { site: string; shardId: string; hourMs: number; records: CountedRecord[] }
  >();
  for (const record of records) {
    const hourMs = floorTo(record.minuteMs, 'hour');
    const site = record.event.site;
    const key = `${site}@${record.shardId}@${hourMs}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { site, shardId: record.shardId, hourMs, records: [] }));
    group.records.push(record);
  }
  const items: RollupItem[] = [];
  for (const { site, shardId, hourMs, records: list } of groups.values()) {
    const expiresAt = expiresAtFor(hourMs + HOUR_MS - MINUTE_MS, retentionHours);
    for (let i = 0; i < list.length; i += ROLLUP_MAX_ROWS) {
      items.push(...blocksOf(site, shardId, hourMs, list.slice(i, i + ROLLUP_MAX_ROWS), expiresAt));
    }
  }
  return items;
}

/** Writes one rollup item; returns the write units DynamoDB reports. */
export async function putRollup(
  documents: DynamoDBDocumentClient,
  tableName: string,
  item: RollupItem,
): Promise<number> {
  const output = await documents.send(
    new PutCommand({
      TableName: tableName,
      Item: {
        pk: item.pk,
        sk: item.sk,
        [ROLLUP_ATTRIBUTES.block]: item.body,
        [ROLLUP_ATTRIBUTES.rows]: item.rows,
        [ROLLUP_ATTRIBUTES.expiresAt]: item.expiresAt,
      },
      ReturnConsumedCapacity: 'TOTAL',
    }),
  );
  return output.ConsumedCapacity?.CapacityUnits ?? 0;
}

export interface RollupReaderDeps {
  readonly documents: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly clock: () => number;
  readonly concurrency?: number;
  readonly onRequest?: () => void;
  /** Bytes of blocks read, for the bench. */
  readonly onBytes?: (bytes: number) => void;
}

interface StoredBlock {
  readonly shardId: string;
  readonly first: string;
  readonly last: string;
  readonly body: Uint8Array;
}

/**
 * Adds the speed part of [fromMs, toMs) to a tally: one Query (and its pages) per hour, then per (shard, hour) the
 * sweep that counts each record once.
 */
export async function tallyRollups(
  deps: RollupReaderDeps,
  fromMs: number,
  toMs: number,
  tally: FilterTally,
  site: string,
): Promise<void> {
  if (toMs <= fromMs) return;
  const nowSeconds = deps.clock() / 1000;
  const hours = bucketStarts(fromMs, toMs, 'hour');
  const byHour = new Map<number, StoredBlock[]>();
  await allLimited(hours, deps.concurrency ?? 8, async (hourMs) => {
    const items = await queryAll(
      deps.documents,
      {
        TableName: deps.tableName,
        KeyConditionExpression: 'pk = :pk',
        FilterExpression: '#exp > :now',
        ExpressionAttributeNames: { '#exp': ROLLUP_ATTRIBUTES.expiresAt },
        ExpressionAttributeValues: { ':pk': rollupPartitionKey(site, hourMs), ':now': nowSeconds },
      },
      deps.onRequest,
    );
    byHour.set(
      hourMs,
      items.map((item) => {
        const [shardId, first, last] = (item.sk as string).split('#') as [string, string, string];
        const body = item[ROLLUP_ATTRIBUTES.block] as Uint8Array;
        deps.onBytes?.(body.length);
        return { shardId, first, last, body };
      }),
    );
  });
  for (const hourMs of hours) {
    const shards = new Map<string, StoredBlock[]>();
    for (const block of byHour.get(hourMs) ?? []) {
      if (!shards.has(block.shardId)) shards.set(block.shardId, []);
      shards.get(block.shardId)!.push(block);
    }
    for (const blocks of shards.values()) {
      blocks.sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : b.last < a.last ? -1 : 1));
      let high = '';
      for (const stored of blocks) {
        if (stored.last <= high) continue;
        const block = decodeBlock(stored.body);
        let first = 0;
        if (stored.first <= high) {
          // Overlaps what is counted: only the records above the highest sequence number taken so far.
          const taken = BigInt(high);
          const sequences = block.sequences();
          while (first < sequences.length && sequences[first]! <= taken) first += 1;
        }
        high = stored.last;
        tally.add(block, hourMs, first);
      }
    }
  }
}
