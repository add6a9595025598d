import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamBatchResponse, KinesisStreamRecord } from 'aws-lambda';
import { PREFIXES } from '../resources.js';
import { padSequence } from './table.js';
import { toIso } from '../time.js';
import { forEachLimited } from '../concurrency.js';
import { describeError, isTransient } from '../aws-errors.js';
import { aggregateBatch, recordFields, type Cell, type RejectedRecord } from './aggregate.js';
import { putRollup, rollupItems, type RollupItem } from './rollup.js';
import {
  cellWriteLimits,
  emptyTally,
  startProgress,
  writeCell,
  type CellProgress,
  type CellWriteLimits,
  type CellWriteTally,
  type GenerationCache,
} from './cell-writer.js';

/**
 * The speed layer's batch processing: aggregate in memory into cells (dimension × minute × shard), then write
 * each cell as a short chain of idempotent conditional updates (cell-writer.ts argues why exactly once).
 *
 * Invariant relied on: records of a shard reach the handler in sequence order, one batch at a time per
 * shard (ParallelizationFactor 1), and a retry resumes from a checkpoint.
 */

export const SPEED_METRICS = [
  'RecordsReceived',
  'RecordsCounted',
  'DeadLetterRecords',
  'ExpiredRecordsDropped',
  'RepeatedEventsDropped',
  /** Counter updates applied (a cell takes one per up to `valuesPerWrite` values of a batch). */
  'CellWrites',
  /** Updates found already applied when read back (replays, resumed batches). */
  'CellsAlreadyApplied',
  'CellWriteFailures',
  /** Consistent reads after a failed condition. */
  'CellReadBacks',
  /** Write capacity units the applied updates consumed, as DynamoDB reports them (rollup blocks included). */
  'WriteUnits',
  /** Rollup blocks written for filtered reads (shared/speed/rollup.ts). */
  'RollupWrites',
  /** Of WriteUnits, those the rollup blocks consumed. */
  'RollupWriteUnits',
  /** Times a cell moved to its next generation item. */
  'GenerationRolls',
  /** Records set aside because a write of theirs failed with an error no retry can fix (alarmed). */
  'WriteRejectedRecords',
] as const;
export type SpeedMetric = (typeof SPEED_METRICS)[number];

export interface SpeedObserver {
  count(metric: SpeedMetric, value: number): void;
  rejected?(record: RejectedRecord): void;
  error?(message: string, error: unknown): void;
}

export interface SpeedDeps {
  readonly documents: DynamoDBDocumentClient;
  readonly s3: S3Client;
  readonly tableName: string;
  readonly bucket: string;
  readonly retentionHours: number;
  /** The site of a record that names none (Settings.defaultSite). */
  readonly defaultSite: string;
  readonly clock: () => number;
  readonly observer?: SpeedObserver;
  /** Time left in the invocation; retries stop with a margin before it runs out. */
  readonly remainingTimeMs?: () => number;
  /** Cells written at once (the updates of one cell run in sequence). @default 32 */
  readonly concurrency?: number;
  /** Values per update and generation size. @default DEFAULT_CELL_WRITE_LIMITS */
  readonly limits?: Partial<CellWriteLimits>;
  /** Cells' generations, kept across warm invocations; without it every batch starts cold. */
  readonly cache?: GenerationCache;
  /** Backoff base for in-invocation retries of failed cell writes. @default 50 */
  readonly retryBaseMs?: number;
  /** Whether rollup blocks are written (filtered reads need them); false only measures the counters alone. @default true */
  readonly rollups?: boolean;
}

const TIME_MARGIN_MS = 2000;
/** The default limits, checked once rather than on every batch (the check builds a whole update). */
const DEFAULT_LIMITS = cellWriteLimits();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A record set aside in the dead-letter store: rejected by validation, or refused by the speed table. */
interface DeadLetter {
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly arrivalMs: number;
  /** A validation violation, or `write_rejected` for a write that failed with a permanent error. */
  readonly violation: string;
  readonly reason: string;
  readonly data: string;
}

async function writeDeadLetters(
  deps: SpeedDeps,
  letters: readonly DeadLetter[],
  nowMs: number,
  kind: 'rejected' | 'write-rejected',
): Promise<void> {
  if (letters.length === 0) return;
  const first = letters[0]!;
  const body = letters
    .map((r) =>
      JSON.stringify({
        shardId: r.shardId,
        sequenceNumber: r.sequenceNumber,
        approximateArrivalTimestamp: toIso(r.arrivalMs),
        violation: r.violation,
        reason: r.reason,
        data: r.data,
      }),
    )
    .join('\n');
  const iso = toIso(nowMs);
  // Keyed by the first record: a retried batch overwrites its own object instead of adding one.
  const key = `${PREFIXES.deadLetter}speed/dt=${iso.slice(0, 10)}/${kind}-${first.shardId}-${first.sequenceNumber}.jsonl`;
  await deps.s3.send(
    new PutObjectCommand({
      Bucket: deps.bucket,
      Key: key,
      Body: body + '\n',
      ContentType: 'application/x-ndjson',
    }),
  );
}

/** Processes one Kinesis batch; the response names the earliest record that is not yet safely applied. */
export async function processSpeedBatch(
  records: readonly KinesisStreamRecord[],
  deps: SpeedDeps,
): Promise<KinesisStreamBatchResponse> {
  const observer = deps.observer;
  const nowMs = deps.clock();
  const aggregate = aggregateBatch(records, nowMs, deps.retentionHours, { defaultSite: deps.defaultSite });
  const { cells, rejected, expired, repeats, counted } = aggregate;
  observer?.count('RecordsReceived', records.length);
  observer?.count('ExpiredRecordsDropped', expired);
  observer?.count('RepeatedEventsDropped', repeats);
  for (const record of rejected) observer?.rejected?.(record);

  const unapplied: string[] = [];
  try {
    const letters = rejected.map((r) => ({ ...r, ...r.rejection }));
    await writeDeadLetters(deps, letters, nowMs, 'rejected');
    observer?.count('DeadLetterRecords', rejected.length);
  } catch (error) {
    observer?.error?.('dead-letter write failed; the rejected records will be retried', error);
    unapplied.push(...rejected.map((r) => padSequence(r.sequenceNumber)));
  }

  const [cellsWritten, rollupsWritten] = await Promise.all([
    applyCells(deps, [...cells.values()]),
    deps.rollups === false
      ? { pending: [], refused: [] }
      : applyRollups(deps, rollupItems(aggregate.records, deps.retentionHours)),
  ]);
  const { pending } = cellsWritten;
  for (const { cell, progress } of pending) unapplied.push(padSequence(cell.sequences[progress.next]!));
  // A rollup block that did not land is written again by the retry, which starts at or before its first record.
  for (const item of rollupsWritten.pending) unapplied.push(item.first);
  const refused: RefusedWrite[] = [
    ...cellsWritten.refused.map(({ cell, from, error }) => ({
      what: `${cell.dimension} counter`,
      sequences: cell.sequences,
      from,
      error,
    })),
    ...rollupsWritten.refused.map(({ item, error }) => ({
      what: 'rollup block',
      sequences: item.sequences,
      from: 0,
      error,
    })),
  ];
  if (refused.length > 0) {
    const setAside = await setAsideRefused(deps, records, refused, nowMs);
    if (setAside) observer?.count('WriteRejectedRecords', setAside);
    else for (const { sequences, from } of refused) unapplied.push(padSequence(sequences[from]!));
  }
  if (unapplied.length === 0) {
    observer?.count('RecordsCounted', counted);
    return { batchItemFailures: [] };
  }
  // The mapping resumes from the lowest reported record; cells above it that did land are skipped on replay.
  const earliest = unapplied.reduce((min, s) => (s < min ? s : min));
  const record = records.find((r) => padSequence(r.kinesis.sequenceNumber) === earliest)!;
  return { batchItemFailures: [{ itemIdentifier: record.kinesis.sequenceNumber }] };
}

/** A cell being written, with how far it got. */
interface CellWrite {
  readonly cell: Cell;
  readonly progress: CellProgress;
}

/**
 * A cell whose write failed with an error that no retry can fix: its records from `from` on are set aside
 * (the cell's later updates are not tried, so a failed dead-letter write leaves them all to a retry).
 */
interface RefusedCell {
  readonly cell: Cell;
  readonly from: number;
  readonly error: unknown;
}

/** A write refused for good (a counter cell's, or a rollup block's): its records from `from` on are set aside. */
interface RefusedWrite {
  readonly what: string;
  readonly sequences: readonly string[];
  readonly from: number;
  readonly error: unknown;
}

/**
 * Writes the cells, retrying transient failures with backoff while time remains. Returns the cells still
 * failing transiently (to be retried by the event source mapping) and those refused for good.
 */
async function applyCells(
  deps: SpeedDeps,
  cells: Cell[],
): Promise<{ pending: CellWrite[]; refused: RefusedCell[] }> {
  const observer = deps.observer;
  const writer = {
    documents: deps.documents,
    tableName: deps.tableName,
    limits: deps.limits ? cellWriteLimits(deps.limits) : DEFAULT_LIMITS,
    ...(deps.cache ? { cache: deps.cache } : {}),
  };
  const tally: CellWriteTally = emptyTally();
  const refused: RefusedCell[] = [];
  let pending: CellWrite[] = cells.map((cell) => ({ cell, progress: startProgress() }));
  for (let attempt = 0; pending.length > 0; attempt += 1) {
    const failed = await forEachLimited(pending, deps.concurrency ?? 32, ({ cell, progress }) =>
      writeCell(writer, cell, progress, tally),
    );
    pending = [];
    for (const { item, error } of failed) {
      if (isTransient(error)) pending.push(item);
      else refused.push({ cell: item.cell, from: item.progress.next, error });
    }
    if (pending.length === 0) break;
    observer?.error?.(`${pending.length} cell writes failed (attempt ${attempt + 1})`, failed[0]!.error);
    observer?.count('CellWriteFailures', pending.length);
    const delay = Math.min(2000, (deps.retryBaseMs ?? 50) * 2 ** attempt);
    const remaining = deps.remainingTimeMs?.() ?? Infinity;
    if (attempt >= 8 || remaining - delay < TIME_MARGIN_MS) break;
    await sleep(delay * (0.5 + Math.random() / 2));
  }
  observer?.count('CellWrites', tally.writes);
  observer?.count('CellsAlreadyApplied', tally.alreadyApplied);
  observer?.count('CellReadBacks', tally.readBacks);
  observer?.count('WriteUnits', tally.writeUnits);
  observer?.count('GenerationRolls', tally.generationRolls);
  return { pending, refused };
}

/**
 * Writes the batch's rollup blocks (one PutItem each), retrying transient failures with backoff while time remains,
 * as the cells are. Returns those still failing transiently (the event source mapping retries them) and those
 * refused for good (a missing table, access): their records are set aside like a refused cell's, never retried.
 */
async function applyRollups(
  deps: SpeedDeps,
  items: RollupItem[],
): Promise<{ pending: RollupItem[]; refused: { item: RollupItem; error: unknown }[] }> {
  let pending = items;
  const refused: { item: RollupItem; error: unknown }[] = [];
  let units = 0;
  let writes = 0;
  for (let attempt = 0; pending.length > 0; attempt += 1) {
    const failed = await forEachLimited(pending, deps.concurrency ?? 32, async (item) => {
      units += await putRollup(deps.documents, deps.tableName, item);
      writes += 1;
    });
    pending = [];
    for (const { item, error } of failed) {
      if (isTransient(error)) pending.push(item);
      else refused.push({ item, error });
    }
    if (pending.length === 0) break;
    deps.observer?.error?.(
      `${pending.length} rollup writes failed (attempt ${attempt + 1})`,
      failed[0]!.error,
    );
    const delay = Math.min(2000, (deps.retryBaseMs ?? 50) * 2 ** attempt);
    const remaining = deps.remainingTimeMs?.() ?? Infinity;
    if (attempt >= 8 || remaining - delay < TIME_MARGIN_MS) break;
    await sleep(delay * (0.5 + Math.random() / 2));
  }
  deps.observer?.count('RollupWrites', writes);
  deps.observer?.count('RollupWriteUnits', units);
  deps.observer?.count('WriteUnits', units);
  return { pending, refused };
}

/**
 * Moves the records of refused writes (counter cells, rollup blocks) to the dead-letter store with the error, so the shard goes on.
 * Returns how many records were set aside, or 0 when the dead-letter write failed (then they are retried:
 * stalling is better than losing them).
 */
async function setAsideRefused(
  deps: SpeedDeps,
  records: readonly KinesisStreamRecord[],
  refused: readonly RefusedWrite[],
  nowMs: number,
): Promise<number> {
  const reasons = new Map<string, string>();
  for (const { what, sequences, from, error } of refused) {
    const reason = `${what} write refused: ${describeError(error)}`;
    for (let i = from; i < sequences.length; i += 1) {
      const sequence = sequences[i]!;
      if (!reasons.has(sequence)) reasons.set(sequence, reason);
    }
  }
  for (const { error } of refused.slice(0, 1)) deps.observer?.error?.('speed write refused for good', error);
  const letters: DeadLetter[] = records
    .filter((r) => reasons.has(r.kinesis.sequenceNumber))
    .map((r) => ({
      ...recordFields(r),
      violation: 'write_rejected',
      reason: reasons.get(r.kinesis.sequenceNumber)!,
    }));
  try {
    await writeDeadLetters(deps, letters, nowMs, 'write-rejected');
    return letters.length;
  } catch (error) {
    deps.observer?.error?.('dead-letter write failed; the refused records will be retried', error);
    return 0;
  }
}
