import { DEFAULT_SETTINGS } from '../../shared/resources.js';
import type { S3Client } from '@aws-sdk/client-s3';
import { UpdateCommand, type DynamoDBDocumentClient, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamRecord } from 'aws-lambda';
import { GenerationCache } from '../../shared/speed/cell-writer.js';
import { processSpeedBatch, type SpeedDeps } from '../../shared/speed/speed-layer.js';
import { VISITOR_HASH_BYTES } from '../../shared/speed/table.js';
import type { Item } from './condition-expression.js';
import { InMemorySpeedTable, itemBytes } from './in-memory-speed-table.js';

/**
 * The speed layer's write cost as the in-memory table charges it: what the speed bench reports and what the cost
 * estimate (scripts/cost.ts) reads.
 */

export interface WriteCost {
  readonly writes: number;
  readonly writeUnits: number;
  /** Bytes of url counter items stored: what a reader of those minutes reads. */
  readonly urlBytes: number;
  /** Bytes of every item stored (all dimensions). */
  readonly allBytes?: number;
}

/** What the table was charged, and the bytes its items hold (all, and the url dimension's). */
export function footprint(items: Iterable<Item>, writes: number, writeUnits: number): WriteCost {
  let urlBytes = 0;
  let allBytes = 0;
  for (const item of items) {
    const bytes = itemBytes(item);
    allBytes += bytes;
    if ((item.pk as string).startsWith('url#')) urlBytes += bytes;
  }
  return { writes, writeUnits, urlBytes, allBytes };
}

const s3Sink = { send: async () => ({}) } as unknown as S3Client;

/** What the speed layer needs besides its table, all sinks: nothing leaves the process. */
export const speedSinkDeps = (documents: DynamoDBDocumentClient): SpeedDeps => ({
  documents,
  s3: s3Sink,
  defaultSite: DEFAULT_SETTINGS.defaultSite,
  tableName: 'bench',
  bucket: 'bench',
  retentionHours: 48,
  clock: Date.now,
});

/**
 * The table as a counts-only design sees it: each update loses its visitor-set clauses (`ADD #u… :u…`), and the
 * bytes the writer counted for their hashes come off its `:sz`, so generations fill as they would without them.
 */
function withoutVisitorSets(documents: DynamoDBDocumentClient): DynamoDBDocumentClient {
  const send = (command: { input: Record<string, unknown> }) => {
    if (!(command instanceof UpdateCommand)) return documents.send(command as never);
    const input = command.input as UpdateCommandInput;
    const names = { ...input.ExpressionAttributeNames };
    const values = { ...input.ExpressionAttributeValues };
    let hashes = 0;
    const expression = input.UpdateExpression!.replace(/, #u(\w+) :u\1/g, (_, id: string) => {
      hashes += (values[`:u${id}`] as Set<number>).size;
      delete names[`#u${id}`];
      delete values[`:u${id}`];
      return '';
    });
    values[':sz'] = (values[':sz'] as number) - hashes * VISITOR_HASH_BYTES;
    return documents.send(
      new UpdateCommand({
        ...input,
        UpdateExpression: expression,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  };
  return { send } as unknown as DynamoDBDocumentClient;
}

/**
 * The table as a design that counts only `dimensions` sees it: updates of other dimensions' cells (their `pk` is
 * `<site>#<dimension>#<hour>`) are dropped. Cells are written independently of each other, so what remains is exactly
 * what those dimensions cost.
 */
function onlyDimensions(
  documents: DynamoDBDocumentClient,
  dimensions: readonly string[],
): DynamoDBDocumentClient {
  const kept = new Set(dimensions);
  const send = (command: { input: Record<string, unknown> }) => {
    if (command instanceof UpdateCommand) {
      const pk = String((command.input as UpdateCommandInput).Key!.pk);
      if (!kept.has(pk.split('#')[1]!)) return Promise.resolve({});
    }
    return documents.send(command as never);
  };
  return { send } as unknown as DynamoDBDocumentClient;
}

/**
 * This design: the real handler, one warm instance, against the in-memory table; with `visitors: false`, the
 * same items without visitor sets (what visitors cost); with `dimensions`, only those dimensions' cells.
 */
export async function currentDesign(
  lambdaBatches: readonly KinesisStreamRecord[][],
  /** `rollups: false`: the counters alone, without the rollup blocks that filtered reads need (docs/filters.md). */
  options: { visitors?: boolean; dimensions?: readonly string[]; rollups?: boolean } = {},
): Promise<WriteCost> {
  const table = new InMemorySpeedTable();
  const cache = new GenerationCache();
  const counted = options.dimensions ? onlyDimensions(table.client, options.dimensions) : table.client;
  const documents = options.visitors === false ? withoutVisitorSets(counted) : counted;
  for (const batch of lambdaBatches) {
    const response = await processSpeedBatch(batch, {
      ...speedSinkDeps(documents),
      cache,
      rollups: options.rollups ?? true,
    });
    if (response.batchItemFailures.length > 0)
      throw new Error('the speed handler failed on the in-memory table');
  }
  return footprint(table.items.values(), table.writes, table.writeUnits);
}
