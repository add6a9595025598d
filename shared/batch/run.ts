import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DeleteCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { HorizonState } from '../counts.js';
import { TOTAL_VALUE } from '../counts.js';
import { queryAll } from '../dynamodb.js';
import { PREFIXES, type Settings } from '../resources.js';
import type { SqlEngine, ViewRow } from '../sql/index.js';
import {
  DAY_MS,
  dayBucket,
  hourBucket,
  HOUR_MS,
  hourPartition,
  hourPartitionPath,
  MINUTE_MS,
  toIso,
} from '../time.js';
import { deleteObjects, updateDay, type ViewStoreDeps } from '../views/store.js';
import { clearDirtyHours, readDirtyHours, type DirtyHour } from './catalog.js';
import { deliveryWatermark, type DeliveryMetrics } from './delivery.js';
import { acquireLease, publishHorizon, readHorizonState, recordRun } from './state.js';
import { writeTotals, type UnstorableRow } from './views.js';

/**
 * One batch run: compute the hours whose raw partitions received objects since they were last computed (the
 * catalog's dirty marks), whatever their age, write the view rows that changed, and only then publish the
 * horizon H. H is the first hour not covered and only moves forward.
 *
 * H follows the data, not only the clock (docs/faults.md): it may pass an hour only when every record that
 * reached the stream up to `SAFETY_MARGIN_MS` after the hour's end has landed in raw/, which the delivery
 * watermark (shared/batch/delivery.ts) proves, and never later than the clock allows. Objects that land later
 * for hours before H (late events, a redrive) mark their hour dirty again and the next run folds them in.
 */

export const SAFETY_MARGIN_MS = 5 * MINUTE_MS;
/** Most hours one run computes; a long backlog is worked off over several runs. */
export const MAX_HOURS_PER_RUN = 14 * 24;
export const LEASE_MS = 15 * MINUTE_MS;
/** Replaced view objects are deleted this long after the run that replaced them (readers may hold them). */
export const GARBAGE_GRACE_MS = 30 * MINUTE_MS;

export interface BatchDeps {
  readonly engine: SqlEngine;
  readonly documents: DynamoDBDocumentClient;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly viewsTable: string;
  readonly stateTable: string;
  readonly settings: Settings;
  readonly clock: () => number;
  /**
   * What Firehose reports about its delivery (CloudWatch on AWS, the stand-in locally). Absent: everything the
   * stream carried has landed (tests and benchmarks that land their data before they run).
   */
  readonly delivery?: DeliveryMetrics;
  /** Test hook: runs after the views are written and before H is published (a crash point). */
  readonly beforePublish?: () => Promise<void>;
  readonly log?: (message: string) => void;
  /** Called once per request to the view stores, for accounting (benchmarks, tests). */
  readonly onViewRequest?: ViewStoreDeps['onRequest'];
}

export interface BatchRequest {
  /** A rebuild of [fromMs, toMs), hour-aligned: recomputes every hour there and leaves H where it is. */
  readonly rebuild?: { readonly fromMs: number; readonly toMs: number };
}

export interface RunSummary {
  readonly outcome: 'published' | 'skipped';
  readonly detail: string;
  readonly horizon?: HorizonState;
  /** Hours computed by this run. */
  readonly hours: number;
  /** Total rows (hour and day) written because their count changed. */
  readonly rowsWritten: number;
  /** View-store objects written (content changed) and kept (content unchanged). */
  readonly objectsWritten: number;
  readonly objectsKept: number;
  /** Rows the views table refused for good: kept under dead-letter/batch/ (and alarmed), not retried. */
  readonly unstorableRows: number;
  readonly queries: number;
}

export class BatchRangeError extends Error {
  override readonly name = 'BatchRangeError';
}

/**
 * The newest H the clock allows at `nowMs`: a record lands at most `firehoseBufferSeconds` after it reached the
 * stream when Firehose keeps up, so this is an upper bound, never a proof.
 */
export function clockHorizon(nowMs: number, settings: Settings): number {
  return hourBucket(nowMs - settings.firehoseBufferSeconds * 1000 - SAFETY_MARGIN_MS);
}

/**
 * The newest H a run at `nowMs` may publish: at most what the clock allows, and no hour whose records (those
 * that reached the stream by `SAFETY_MARGIN_MS` after it ended) may still be in flight. `watermarkMs` is the
 * delivery watermark; undefined (nothing proven) allows no hour at all (-Infinity), Infinity everything.
 */
export function candidateHorizon(nowMs: number, settings: Settings, watermarkMs = Infinity): number {
  if (watermarkMs === undefined) return -Infinity;
  return Math.min(clockHorizon(nowMs, settings), hourBucket(watermarkMs - SAFETY_MARGIN_MS));
}

/** Hours grouped into runs of consecutive hours within one UTC day: one hourly query each. */
export function hourRuns(
  hours: readonly number[],
): { dt: string; fromHour: string; toHour: string; hours: number[] }[] {
  const sorted = [...new Set(hours)].sort((a, b) => a - b);
  const runs: { dt: string; fromHour: string; toHour: string; hours: number[] }[] = [];
  for (const hourMs of sorted) {
    const last = runs[runs.length - 1];
    const previous = last?.hours[last.hours.length - 1];
    if (last && previous === hourMs - HOUR_MS && dayBucket(previous) === dayBucket(hourMs)) {
      last.hours.push(hourMs);
    } else {
      const { dt, hour } = hourPartition(hourMs);
      runs.push({ dt, fromHour: hour, toHour: '', hours: [hourMs] });
    }
  }
  for (const run of runs) {
    const end = run.hours[run.hours.length - 1]! + HOUR_MS;
    run.toHour = end % DAY_MS === 0 ? '24' : hourPartition(end).hour;
  }
  return runs;
}

const EMPTY = { hours: 0, rowsWritten: 0, objectsWritten: 0, objectsKept: 0, unstorableRows: 0, queries: 0 };

/** Computes the given hours and writes what changed: totals to DynamoDB, breakdowns to the view store. */
async function computeHours(deps: BatchDeps, hours: readonly number[], version: string) {
  let queries = 0;
  const rows: ViewRow[] = [];
  for (const run of hourRuns(hours)) {
    const partitions = run.hours.map((h) => hourPartitionPath(h));
    // A loop, not push(...rows): a day of a million urls is more arguments than a call can take.
    for (const row of await deps.engine.query('hourly_views', [run.dt, run.fromHour, run.toHour], partitions))
      rows.push(row);
    queries += 1;
  }
  const totals = await writeTotals(
    { documents: deps.documents, tableName: deps.viewsTable },
    hours,
    rows.filter((r) => r.dimension === 'total' && r.value === TOTAL_VALUE),
    version,
  );

  const store: ViewStoreDeps = {
    s3: deps.s3,
    bucket: deps.bucket,
    documents: deps.documents,
    tableName: deps.viewsTable,
    ...(deps.onViewRequest ? { onRequest: deps.onViewRequest } : {}),
  };
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
  let objectsKept = 0;
  const replaced: string[] = [];
  for (const day of days.values()) {
    const result = await updateDay(store, {
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
    objectsKept += result.objectsKept;
    for (const key of result.replaced) replaced.push(key);
  }
  return {
    queries,
    rowsWritten: totals.written,
    unstorable: totals.unstorable,
    objectsWritten,
    objectsKept,
    replaced,
    store,
  };
}

/** Keeps refused view rows, with the error, under `dead-letter/batch/`: one object per run version. */
async function setAsideUnstorable(deps: BatchDeps, version: string, rows: readonly UnstorableRow[]) {
  if (rows.length === 0) return;
  deps.log?.(
    `batch run ${version}: ${rows.length} view rows refused for good, kept under dead-letter/batch/`,
  );
  const body = rows
    .map((r) => JSON.stringify({ ...r.row, granularity: r.granularity, error: r.error }))
    .join('\n');
  await deps.s3.send(
    new PutObjectCommand({
      Bucket: deps.bucket,
      Key: `${PREFIXES.deadLetter}batch/dt=${version.slice(0, 10)}/${version}.jsonl`,
      Body: body + '\n',
      ContentType: 'application/x-ndjson',
    }),
  );
}

/**
 * Objects replaced by this run are listed in the state table; objects replaced by runs older than the grace
 * period are deleted (a reader that started before the replacement has long finished by then).
 */
async function collectGarbage(deps: BatchDeps, store: ViewStoreDeps, version: string, replaced: string[]) {
  const now = deps.clock();
  if (replaced.length > 0) {
    await deps.documents.send(
      new PutCommand({
        TableName: deps.stateTable,
        Item: { pk: 'garbage', sk: version, keys: replaced, replacedAtMs: now },
      }),
    );
  }
  const entries = await queryAll(deps.documents, {
    TableName: deps.stateTable,
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': 'garbage' },
  });
  for (const entry of entries) {
    if ((entry.replacedAtMs as number) > now - GARBAGE_GRACE_MS) continue;
    await deleteObjects(store, entry.keys as string[]);
    await deps.documents.send(
      new DeleteCommand({ TableName: deps.stateTable, Key: { pk: 'garbage', sk: entry.sk } }),
    );
  }
}

export async function runBatch(deps: BatchDeps, request: BatchRequest = {}): Promise<RunSummary> {
  const state = { documents: deps.documents, tableName: deps.stateTable };
  const startedAtMs = deps.clock();
  const lease = await acquireLease(state, startedAtMs, LEASE_MS);
  if (!lease) {
    return { outcome: 'skipped', detail: 'another batch run holds the lease', ...EMPTY };
  }
  try {
    const previous = await readHorizonState(state);
    const version = `${toIso(startedAtMs)}-${lease.owner.slice(0, 8)}`;
    const dirty = await readDirtyHours(state);
    let hours: number[];
    let marks: DirtyHour[];
    let horizonMs: number;
    if (request.rebuild) {
      const { fromMs, toMs } = request.rebuild;
      if (fromMs % HOUR_MS !== 0 || toMs % HOUR_MS !== 0 || toMs <= fromMs) {
        throw new BatchRangeError(
          `a rebuild takes whole hours with from < to, got [${toIso(fromMs)}, ${toIso(toMs)})`,
        );
      }
      if (!previous || toMs > previous.horizonMs) {
        throw new BatchRangeError(
          `a rebuild must end at or before the horizon (${previous ? toIso(previous.horizonMs) : 'none yet'}); later hours belong to the next scheduled run`,
        );
      }
      horizonMs = previous.horizonMs;
      hours = [];
      for (let h = fromMs; h < toMs; h += HOUR_MS) hours.push(h);
      marks = dirty.filter((d) => d.hourMs >= fromMs && d.hourMs < toMs);
    } else {
      const watermarkMs = deps.delivery
        ? deliveryWatermark(await deps.delivery.readings(startedAtMs))
        : Infinity;
      horizonMs = Math.max(
        previous?.horizonMs ?? 0,
        candidateHorizon(startedAtMs, deps.settings, watermarkMs),
      );
      const due = dirty.filter((d) => d.hourMs < horizonMs).sort((a, b) => a.hourMs - b.hourMs);
      marks = due.slice(0, MAX_HOURS_PER_RUN);
      const leftOver = due[MAX_HOURS_PER_RUN];
      // H may not pass an hour with data that this run leaves for the next.
      if (leftOver) horizonMs = Math.max(previous?.horizonMs ?? 0, Math.min(horizonMs, leftOver.hourMs));
      hours = marks.map((d) => d.hourMs);
    }
    deps.log?.(
      `batch run ${version}: computing ${hours.length} hours that received objects` +
        (hours.length ? ` in [${toIso(Math.min(...hours))}, ${toIso(Math.max(...hours) + HOUR_MS)})` : ''),
    );
    const { unstorable, replaced, store, ...computed } = await computeHours(deps, hours, version);
    // H covers every storable row: the refused ones are kept aside first, so none is lost.
    await setAsideUnstorable(deps, version, unstorable);
    await deps.beforePublish?.();
    const horizon: HorizonState = {
      horizonMs,
      version,
      publishedAtMs: deps.clock(),
      computedFromMs: hours.length ? Math.min(...hours) : horizonMs,
      computedToMs: hours.length ? Math.max(...hours) + HOUR_MS : horizonMs,
    };
    const published = await publishHorizon(state, horizon);
    if (published) await clearDirtyHours(state, marks);
    await collectGarbage(deps, store, version, replaced);
    const detail = published
      ? `H = ${toIso(horizonMs)}; ${hours.length} hours computed, ${computed.rowsWritten} total rows and ` +
        `${computed.objectsWritten} view objects written (${computed.objectsKept} unchanged)`
      : 'a later horizon was published meanwhile; this run published nothing';
    await recordRun(state, {
      startedAtMs,
      finishedAtMs: deps.clock(),
      outcome: published ? 'published' : 'skipped',
      detail,
      horizonMs,
    });
    return {
      outcome: published ? 'published' : 'skipped',
      detail,
      ...(published ? { horizon } : {}),
      hours: hours.length,
      ...computed,
      unstorableRows: unstorable.length,
    };
  } catch (error) {
    await recordRun(state, {
      startedAtMs,
      finishedAtMs: deps.clock(),
      outcome: 'failed',
      detail: error instanceof Error ? error.message : String(error),
    }).catch(() => undefined);
    throw error;
  } finally {
    await lease.release();
  }
}
