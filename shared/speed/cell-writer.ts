import {
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { conditionally } from '../dynamodb.js';
import { EVENT_LIMITS } from '../event.js';
import { DYNAMODB_LIMITS, KEY_RANGE_END } from '../keys.js';
import {
  SPEED_ATTRIBUTES as A,
  countAttribute,
  errorAttribute,
  GENERATION_DIGITS,
  generationSortKey,
  padSequence,
  valueAttribute,
  valueEntryBytes,
  VISITOR_HASH_BYTES,
  visitorAttribute,
} from './table.js';
import type { Cell } from './aggregate.js';

/**
 * Writes one cell (a dimension's records of one minute from one shard) exactly once, as a chain of updates to
 * the cell's current generation item.
 *
 * Why no record is counted twice, nor in two generations (the argument the code relies on):
 * 1. One writer per cell: records of a shard reach the handler in order, one batch at a time
 *    (ParallelizationFactor 1), and a retry resumes from a checkpoint below which every record is applied.
 * 2. Sizes only grow (`sz` is only ADDed to), so a generation that is full stays full; a write is conditional on
 *    its generation not being full, and a cell only moves to generation g+1 once g is full. Hence at most one
 *    generation accepts writes, the newest, and every applied write lands on the newest generation.
 * 3. So the cell's counted records are always a prefix, in sequence order, of its records: those at or below M,
 *    the high-water `hw` of the newest generation (every update sets `hw` to its last record; high-waters only
 *    move forward). An update of records [first, last] applies only if M < first (`hw < :first` on the newest
 *    generation; on a generation not yet created, M is the full predecessor's final `hw`, which the writer has
 *    already skipped past), and every record of the cell below `first` is already counted (1) or was set aside
 *    in the dead-letter store, so it adds exactly the records in (M, last] and M becomes `last`.
 * 4. When a condition fails, a consistent read of the newest generation gives M: records at or below it are
 *    counted, those above it are counted nowhere. The writer retries with exactly those above, conditional on
 *    `hw = M`, or moves to the next generation if the newest is full.
 * Every M a writer has seen stays a lower bound of M, so a warm cache may skip records at or below it and
 * start at the generation it last saw, even when that generation does not exist yet (2: its predecessor is
 * full and its `hw` final); a cold cache starts at generation 0 and the first read-back finds the newest.
 */

export interface CellWriteLimits {
  /**
   * Distinct values one update may touch: bounds the UpdateExpression (4 KB: four clauses per value, count,
   * value, errors and visitors) and the bytes one update adds.
   * @default 48
   */
  readonly valuesPerWrite: number;
  /**
   * A generation takes no more updates once it has received this many bytes of values (`sz`). Every update
   * costs a write unit per KB of its item, so small items keep each update near the cost of what it adds;
   * but a cell whose minute holds more values than its buckets' items do stores its frequent values again in
   * each new generation, which readers pay for. `npx tsx bench/layouts.ts` measures both sides.
   * @default 8192
   */
  readonly itemSizeLimitBytes: number;
}

export const DEFAULT_CELL_WRITE_LIMITS: CellWriteLimits = {
  valuesPerWrite: 48,
  itemSizeLimitBytes: 8 * 1024,
};

/** DynamoDB's limit on one expression string. */
export const MAX_EXPRESSION_BYTES = 4096;
/** Most records one update can hold (Lambda's largest Kinesis batch): bounds the visitor hashes it adds. */
const MAX_RECORDS_PER_UPDATE = 10_000;
/** Generations are numbered in GENERATION_DIGITS digits, so that the newest sorts last. */
export const MAX_GENERATION = 10 ** GENERATION_DIGITS - 1;
/** Item attributes besides the values (keys, hw, m, expiresAt, sz), in bytes, generously. */
const ITEM_OVERHEAD_BYTES = 1024;

export class SpeedCellError extends Error {
  override readonly name = 'SpeedCellError';
}

/** Checks limits against DynamoDB's: the expression budget (measured) and the 400 KB item. */
export function cellWriteLimits(overrides: Partial<CellWriteLimits> = {}): CellWriteLimits {
  const limits = { ...DEFAULT_CELL_WRITE_LIMITS, ...overrides };
  const { valuesPerWrite: k, itemSizeLimitBytes: size } = limits;
  if (!Number.isInteger(k) || k < 1)
    throw new RangeError(`valuesPerWrite must be a positive integer, got ${k}`);
  const budget = longestUpdateExpressionBytes(k);
  if (budget > MAX_EXPRESSION_BYTES * 0.8) {
    throw new RangeError(
      `valuesPerWrite ${k} leaves too little of the 4 KB expression limit (${budget} bytes)`,
    );
  }
  const largest =
    ITEM_OVERHEAD_BYTES +
    size +
    k * valueEntryBytes(EVENT_LIMITS.maxUrlBytes) +
    MAX_RECORDS_PER_UPDATE * VISITOR_HASH_BYTES;
  if (!Number.isInteger(size) || size < 1 || largest > DYNAMODB_LIMITS.itemBytes) {
    throw new RangeError(`itemSizeLimitBytes ${size} lets an item reach ${largest} bytes (limit 400 KB)`);
  }
  return limits;
}

/**
 * Index of the first sequence above a stored (padded) high-water, searching from `from`; 0 when there is none.
 * @param sequences ascending, unpadded.
 */
export function indexAbove(sequences: readonly string[], highWater: string | undefined, from = 0): number {
  if (highWater === undefined) return from;
  let lo = from;
  let hi = sequences.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (padSequence(sequences[mid]!) <= highWater) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A cell's place in its chain of generations, as a writer last saw it. */
export interface CellPosition {
  /** The generation to write next (it may not exist yet). */
  readonly generation: number;
  /** A high-water seen on the cell: every record of it at or below this is counted. Padded. */
  readonly counted: string;
  /** Digests of values this writer put in that generation: adding to them again does not grow the item. */
  readonly present: ReadonlySet<string>;
}

/**
 * Each cell's position, kept across warm invocations: saves read-backs and re-writes of what is counted, and
 * lets `sz` count only values new to an item. Bounded: at the default limits an entry holds at most ~80 digests.
 */
export class GenerationCache {
  private readonly positions = new Map<string, CellPosition>();
  constructor(private readonly maxEntries = 4096) {}

  get(key: string): CellPosition | undefined {
    return this.positions.get(key);
  }

  /** Positions only move forward. */
  set(key: string, position: CellPosition): void {
    const known = this.positions.get(key);
    const newer = !known || position.generation >= known.generation ? position : known;
    const counted = known && known.counted > position.counted ? known.counted : position.counted;
    this.positions.delete(key);
    this.positions.set(key, { ...newer, counted });
    if (this.positions.size > this.maxEntries) this.positions.delete(this.positions.keys().next().value!);
  }
}

/** Where writing a cell stands; kept between attempts so that a retry resumes where the last one stopped. */
export interface CellProgress {
  /** Index of the cell's first record not known to be counted. */
  next: number;
  generation: number;
  /** After a read-back: the `hw` the next update requires. */
  expected?: string;
}

export const startProgress = (): CellProgress => ({ next: 0, generation: 0 });

/** What writing cells did, for metrics and the bench. */
export interface CellWriteTally {
  writes: number;
  alreadyApplied: number;
  readBacks: number;
  writeUnits: number;
  generationRolls: number;
}

export const emptyTally = (): CellWriteTally => ({
  writes: 0,
  alreadyApplied: 0,
  readBacks: 0,
  writeUnits: 0,
  generationRolls: 0,
});

export interface CellWriterDeps {
  readonly documents: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly limits: CellWriteLimits;
  readonly cache?: GenerationCache;
}

/** The records of one update: [from, to) of the cell, and what they add to each value. */
export interface CellUpdate {
  readonly from: number;
  readonly to: number;
  /** Value index → records of that value in [from, to). */
  readonly counts: ReadonlyMap<number, number>;
  /** Value index → error page views among them (absent when none). */
  readonly errors: ReadonlyMap<number, number>;
  /** Value index → their distinct visitor hashes. */
  readonly visitors: ReadonlyMap<number, ReadonlySet<number>>;
}

/** The longest run of records from `from` that touches at most `valuesPerWrite` distinct values. */
export function planUpdate(cell: Cell, from: number, valuesPerWrite: number): CellUpdate {
  const counts = new Map<number, number>();
  const errors = new Map<number, number>();
  const visitors = new Map<number, Set<number>>();
  const { valueIndexes, errorFlags, hashes } = cell;
  let to = from;
  for (; to < valueIndexes.length; to += 1) {
    const index = valueIndexes[to]!;
    const count = counts.get(index);
    if (count !== undefined) counts.set(index, count + 1);
    else if (counts.size === valuesPerWrite) break;
    else counts.set(index, 1);
    if (errorFlags[to]) errors.set(index, (errors.get(index) ?? 0) + 1);
    let users = visitors.get(index);
    if (!users) visitors.set(index, (users = new Set()));
    users.add(hashes[to]!);
  }
  return { from, to, counts, errors, visitors };
}

/**
 * The updates a batch's cells take when nothing of them is counted yet and the cache is warm: what the
 * handler writes per batch (generation rolls add none; read-backs happen only on replays and cold starts).
 */
export function plannedUpdates(
  cells: Iterable<Cell>,
  limits: CellWriteLimits = DEFAULT_CELL_WRITE_LIMITS,
): number {
  let updates = 0;
  for (const cell of cells) {
    for (let from = 0; from < cell.sequences.length; updates += 1) {
      from = planUpdate(cell, from, limits.valuesPerWrite).to;
    }
  }
  return updates;
}

/** How an update is guarded: nothing of it counted and the generation not full, or exactly the `hw` read back. */
export type UpdateGuard =
  { readonly kind: 'first' } | { readonly kind: 'stored'; readonly highWater: string };

/** The UpdateItem of one update to one generation. Placeholders are short: the 4 KB limit counts them. */
export function buildUpdate(
  tableName: string,
  cell: Cell,
  update: CellUpdate,
  generation: number,
  guard: UpdateGuard,
  limits: CellWriteLimits,
  present: ReadonlySet<string> = new Set(),
): UpdateCommandInput {
  const names: Record<string, string> = {
    '#hw': A.highWater,
    '#m': A.minute,
    '#exp': A.expiresAt,
    '#sz': A.size,
  };
  const values: Record<string, unknown> = {
    ':hw': padSequence(cell.sequences[update.to - 1]!),
    ':m': cell.minuteMs,
    ':exp': cell.expiresAt,
  };
  const sets = ['#hw = :hw', '#m = :m', '#exp = :exp'];
  const adds = ['#sz :sz'];
  let bytes = 0;
  let i = 0;
  for (const [index, count] of update.counts) {
    const id = (i++).toString(36);
    const digest = cell.digests[index]!;
    const value = cell.values[index]!;
    names[`#v${id}`] = valueAttribute(digest);
    names[`#c${id}`] = countAttribute(digest);
    values[`:v${id}`] = value;
    const countId = `:n${count.toString(36)}`;
    values[countId] = count;
    sets.push(`#v${id} = :v${id}`);
    adds.push(`#c${id} ${countId}`);
    const errors = update.errors.get(index);
    if (errors) {
      names[`#e${id}`] = errorAttribute(digest);
      const errorId = `:n${errors.toString(36)}`;
      values[errorId] = errors;
      adds.push(`#e${id} ${errorId}`);
    }
    // ADD to a number set is a union: a replayed hash changes nothing, and no read is needed.
    const users = update.visitors.get(index)!;
    if (users.size > 0) {
      names[`#u${id}`] = visitorAttribute(digest);
      values[`:u${id}`] = users;
      adds.push(`#u${id} :u${id}`);
    }
    // A value already in the item only adds to its counts, within their budgeted bytes; every hash is counted
    // (the writer cannot tell which are new to the set), so the size is an upper bound.
    if (!present.has(digest)) bytes += valueEntryBytes(Buffer.byteLength(value, 'utf8'));
    bytes += users.size * VISITOR_HASH_BYTES;
  }
  values[':sz'] = bytes;
  let condition: string;
  if (guard.kind === 'first') {
    condition = '(attribute_not_exists(#hw) OR #hw < :first) AND (attribute_not_exists(#sz) OR #sz < :limit)';
    values[':first'] = padSequence(cell.sequences[update.from]!);
    values[':limit'] = limits.itemSizeLimitBytes;
  } else {
    condition = '#hw = :stored';
    values[':stored'] = guard.highWater;
  }
  return {
    TableName: tableName,
    Key: { pk: cell.pk, sk: generationSortKey(cell.skPrefix, generation) },
    UpdateExpression: `SET ${sets.join(', ')} ADD ${adds.join(', ')}`,
    ConditionExpression: condition,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
    // The new `sz` tells the writer when a generation is full, without a failed write to find out.
    ReturnValues: 'UPDATED_NEW',
    ReturnConsumedCapacity: 'TOTAL',
  };
}

/** UTF-8 bytes of the UpdateExpression of an update touching `valuesPerWrite` values, at its longest. */
export function longestUpdateExpressionBytes(valuesPerWrite: number): number {
  const cell: Cell = {
    site: 's',
    pk: 'p',
    skPrefix: 's',
    shardId: 's',
    minuteMs: 0,
    dimension: 'url',
    bucket: 0,
    expiresAt: 0,
    sequences: Array.from({ length: valuesPerWrite }, (_, i) => String(i)),
    valueIndexes: Array.from({ length: valuesPerWrite }, (_, i) => i),
    errorFlags: Array.from({ length: valuesPerWrite }, () => 1),
    hashes: Array.from({ length: valuesPerWrite }, (_, i) => i),
    values: Array.from({ length: valuesPerWrite }, (_, i) => String(i)),
    digests: Array.from({ length: valuesPerWrite }, () => 'd'),
  };
  // Distinct counts give the longest count placeholders; every value has errors and visitors.
  const counts = new Map(Array.from({ length: valuesPerWrite }, (_, i) => [i, 2 ** 30 - i] as const));
  const errors = new Map(Array.from({ length: valuesPerWrite }, (_, i) => [i, 2 ** 29 - i] as const));
  const visitors = new Map(Array.from({ length: valuesPerWrite }, (_, i) => [i, new Set([i])] as const));
  const input = buildUpdate(
    't',
    cell,
    { from: 0, to: valuesPerWrite, counts, errors, visitors },
    0,
    { kind: 'first' },
    DEFAULT_CELL_WRITE_LIMITS,
  );
  return Buffer.byteLength(input.UpdateExpression!, 'utf8');
}

interface NewestGeneration {
  readonly generation: number;
  readonly highWater: string | undefined;
  readonly size: number;
}

/** The newest generation at or after `generation`, read consistently (one item). */
async function readNewest(
  deps: CellWriterDeps,
  cell: Cell,
  generation: number,
): Promise<NewestGeneration | undefined> {
  const { Items } = await deps.documents.send(
    new QueryCommand({
      TableName: deps.tableName,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ProjectionExpression: '#sk, #hw, #sz',
      ExpressionAttributeNames: { '#sk': 'sk', '#hw': A.highWater, '#sz': A.size },
      ExpressionAttributeValues: {
        ':pk': cell.pk,
        ':from': generationSortKey(cell.skPrefix, generation),
        ':to': `${cell.skPrefix}${KEY_RANGE_END}`,
      },
      ScanIndexForward: false,
      Limit: 1,
      ConsistentRead: true,
    }),
  );
  const item = Items?.[0];
  if (!item) return undefined;
  return {
    generation: Number((item.sk as string).slice(cell.skPrefix.length)),
    highWater: item[A.highWater] as string | undefined,
    size: (item[A.size] as number | undefined) ?? 0,
  };
}

export const cellCacheKey = (tableName: string, cell: Cell): string =>
  `${tableName}\n${cell.pk}\n${cell.skPrefix}`;

/**
 * Applies a cell's records from `progress.next` on, update by update, in sequence order. Throws the first
 * error a request fails with, leaving `progress` where a later attempt resumes.
 */
export async function writeCell(
  deps: CellWriterDeps,
  cell: Cell,
  progress: CellProgress,
  tally: CellWriteTally,
): Promise<void> {
  const { limits, cache } = deps;
  const { sequences } = cell;
  const key = cellCacheKey(deps.tableName, cell);
  const known = cache?.get(key);
  if (known) {
    progress.next = indexAbove(sequences, known.counted, progress.next);
    if (known.generation > progress.generation) {
      progress.generation = known.generation;
      progress.expected = undefined;
    }
  }
  // Values known to be in the generation being written; unknown ones are counted in `sz` as new.
  let present = new Set(known?.generation === progress.generation ? known.present : []);
  /** The generation being written is full: move to the next one, which needs no `hw` and holds no values yet. */
  const rollToNextGeneration = (): void => {
    progress.generation += 1;
    progress.expected = undefined;
    tally.generationRolls += 1;
    present = new Set();
  };
  while (progress.next < sequences.length) {
    if (progress.generation > MAX_GENERATION) {
      throw new SpeedCellError(`${cell.pk} ${cell.skPrefix}: more than ${MAX_GENERATION + 1} generations`);
    }
    const update = planUpdate(cell, progress.next, limits.valuesPerWrite);
    const guard: UpdateGuard =
      progress.expected === undefined ? { kind: 'first' } : { kind: 'stored', highWater: progress.expected };
    const input = buildUpdate(deps.tableName, cell, update, progress.generation, guard, limits, present);
    let output: { Attributes?: Record<string, unknown>; ConsumedCapacity?: { CapacityUnits?: number } } = {};
    const applied = await conditionally(
      deps.documents.send(new UpdateCommand(input)).then((result) => void (output = result)),
    );
    if (applied) {
      tally.writes += 1;
      tally.writeUnits += output.ConsumedCapacity?.CapacityUnits ?? 0;
      progress.next = update.to;
      progress.expected = undefined;
      // A full generation takes no more writes, so its hw is final: the next update starts the next one.
      if (((output.Attributes?.[A.size] as number | undefined) ?? 0) >= limits.itemSizeLimitBytes) {
        rollToNextGeneration();
      } else {
        for (const index of update.counts.keys()) present.add(cell.digests[index]!);
      }
      const counted = padSequence(sequences[update.to - 1]!);
      cache?.set(key, { generation: progress.generation, counted, present });
      continue;
    }
    // Part of the update is counted (a replay, a resumed batch, a stale or cold cache), or its generation is full.
    tally.readBacks += 1;
    const newest = await readNewest(deps, cell, progress.generation);
    if (!newest?.highWater) {
      throw new SpeedCellError(
        `${cell.pk} ${generationSortKey(cell.skPrefix, progress.generation)}: condition failed on no item`,
      );
    }
    const above = indexAbove(sequences, newest.highWater, progress.next);
    if (above >= update.to) tally.alreadyApplied += 1;
    progress.next = above;
    if (newest.generation !== progress.generation) present = new Set();
    progress.generation = newest.generation;
    if (newest.size >= limits.itemSizeLimitBytes) {
      rollToNextGeneration();
    } else {
      progress.expected = newest.highWater;
    }
    cache?.set(key, { generation: progress.generation, counted: newest.highWater, present });
  }
}
