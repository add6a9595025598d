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
import { DIMENSIONS } from '../event.js';
import { RowSpill } from '../views/spill.js';
import { type ViewStoreDeps } from '../views/format.js';
import { deleteObjects, spillRow, updateDay } from '../views/writer.js';
import { clearDirtyHours, readDirtyHours, reconcileLanded, type DirtyHour } from './catalog.js';
import { deliveryWatermark, type DeliveryMetrics } from './delivery.js';
import { clearFailures, HOUR_RETRY_BUDGET, readFailingHours, recordFailures } from './retries.js';
import { acquireLease, publishHorizon, readHorizonState, recordRun } from './state.js';
import { writeTotals, type UnstorableRow } from './views.js';
import { readSiteSpans, spanCoversDay, widenSiteSpan, type SiteSpan } from './sites.js';
import { CUBE_DIMENSION, CubeRows, updateCubeDay } from './cube.js';

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
  /** No new day is started after this instant (the Lambda's remaining time, less what publishing needs). */
  readonly deadlineMs?: number;
  /** Where a day's rows spill while its views are rebuilt (the function's /tmp). @default the OS temp folder */
  readonly spillDir?: string;
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
  /** Hours whose computation failed in this run (their day is retried after a backoff; H stays before them). */
  readonly failedHours: number;
  /** Hours failing `HOUR_RETRY_BUDGET` times or more in a row (alarmed). */
  readonly hoursOverRetryBudget: number;
  /** Due hours left for a later run: out of time, or a failing hour still in its backoff. */
  readonly deferredHours: number;
  /** Landed objects that no notification had marked, found by this run's reconciliation (alarmed). */
  readonly unmarkedObjects: number;
  /** How far H trails what the clock alone would allow (ms; alarmed above 2 h). */
  readonly candidateLagMs?: number;
  /** The delivery watermark the run read, if any. */
  readonly watermarkMs?: number;
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
export function candidateHorizon(nowMs: number, settings: Settings, watermarkMs: number | undefined): number {
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

const EMPTY = {
  hours: 0,
  rowsWritten: 0,
  objectsWritten: 0,
  objectsKept: 0,
  unstorableRows: 0,
  queries: 0,
  failedHours: 0,
  hoursOverRetryBudget: 0,
  deferredHours: 0,
  unmarkedObjects: 0,
};

/** What computing some hours did. */
interface Computed {
  queries: number;
  rowsWritten: number;
  objectsWritten: number;
  objectsKept: number;
  unstorable: UnstorableRow[];
  replaced: string[];
  /** By site: the first and last computed hour with a page view of it. */
  withViews: Map<string, { first: number; last: number }>;
}

/** One site's rows of a day: its hourly totals and a spill per dimension. */
interface SiteRows {
  readonly totals: ViewRow[];
  readonly spills: Map<string, RowSpill>;
}

/**
 * Computes some hours of one UTC day and writes what changed, site by site: totals to DynamoDB, breakdowns to
 * the view store. The query results stream through: totals (one row per site and hour) are kept, every other
 * row goes into its site's and dimension's spill (shared/views/spill.ts), so memory does not grow with the
 * day's distinct values. One query covers every site: the raw data is partitioned by time only.
 */
async function computeDay(
  deps: BatchDeps,
  store: ViewStoreDeps,
  dayMs: number,
  hours: readonly number[],
  version: string,
  spans: ReadonlyMap<string, SiteSpan>,
): Promise<Computed> {
  const sites = new Map<string, SiteRows>();
  const rowsOf = (site: string): SiteRows => {
    let rows = sites.get(site);
    if (!rows) {
      const spills = new Map(
        DIMENSIONS.map((d) => [d as string, new RowSpill(deps.spillDir ? { dir: deps.spillDir } : {})]),
      );
      sites.set(site, (rows = { totals: [], spills }));
    }
    return rows;
  };
  // A site the views hold rows of for this day gets its recomputed hours replaced, even with no rows now.
  for (const span of spans.values()) if (spanCoversDay(span, dayMs)) rowsOf(span.site);
  try {
    let queries = 0;
    // The filter cube's rows, by site (docs/filters.md).
    const cubes = new Map<string, CubeRows>();
    for (const run of hourRuns(hours)) {
      const partitions = run.hours.map((h) => hourPartitionPath(h));
      for await (const chunk of deps.engine.query(
        'hourly_views',
        [deps.settings.defaultSite, run.dt, run.fromHour, run.toHour],
        partitions,
      )) {
        for (const row of chunk) {
          const site = rowsOf(row.site);
          if (row.dimension === 'total') {
            if (row.value === TOTAL_VALUE) site.totals.push(row);
            continue;
          }
          if (row.dimension === CUBE_DIMENSION) {
            let cube = cubes.get(row.site);
            if (!cube) cubes.set(row.site, (cube = new CubeRows()));
            cube.add(row);
            continue;
          }
          const spill = site.spills.get(row.dimension);
          if (!spill) throw new Error(`hourly_views returned an unknown dimension ${row.dimension}`);
          spillRow(spill, dayMs, {
            hourMs: row.bucketMs,
            value: row.value,
            views: row.views,
            errors: row.errors,
            ...(row.visitors ? { visitors: row.visitors } : {}),
          });
        }
      }
      queries += 1;
    }
    const computed: Computed = {
      queries,
      rowsWritten: 0,
      objectsWritten: 0,
      objectsKept: 0,
      unstorable: [],
      replaced: [],
      withViews: new Map(),
    };
    for (const [site, { totals, spills }] of sites) {
      // The filter cube's hours, before the views: H is published only after both (docs/filters.md).
      const cubeResult = await updateCubeDay(store, dayMs, hours, cubes.get(site) ?? new CubeRows(), site);
      computed.objectsWritten += cubeResult.objectsWritten;
      computed.objectsKept += cubeResult.objectsKept;
      computed.replaced.push(...cubeResult.replaced);
      const written = await writeTotals(
        { documents: deps.documents, tableName: deps.viewsTable },
        site,
        hours,
        totals,
        version,
      );
      computed.rowsWritten += written.written;
      computed.unstorable.push(...written.unstorable);
      const counted = totals.filter((t) => t.views > 0).map((t) => t.bucketMs);
      if (counted.length > 0)
        computed.withViews.set(site, { first: Math.min(...counted), last: Math.max(...counted) });
      // Every dimension of the day, even one without rows now: a recomputed hour's rows replace the old ones.
      for (const [dimension, spill] of spills) {
        const result = await updateDay(store, { site, dimension, dayMs, hours, rows: spill });
        computed.objectsWritten += result.objectsWritten + (result.manifestWritten ? 1 : 0);
        computed.objectsKept += result.objectsKept;
        for (const key of result.replaced) computed.replaced.push(key);
      }
    }
    return computed;
  } finally {
    for (const { spills } of sites.values()) for (const spill of spills.values()) spill.dispose();
  }
}

/** The due hours by UTC day, oldest first: a day is the unit of work (its views are rebuilt together). */
function byDay(hours: readonly number[]): { dayMs: number; hours: number[] }[] {
  const days = new Map<number, number[]>();
  for (const hourMs of [...new Set(hours)].sort((a, b) => a - b)) {
    const day = days.get(dayBucket(hourMs));
    if (day) day.push(hourMs);
    else days.set(dayBucket(hourMs), [hourMs]);
  }
  return [...days.entries()].map(([dayMs, list]) => ({ dayMs, hours: list }));
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
    // The watermark first: what it proves landed is in S3 now, so the reconciliation's listing and the marks
    // read after it cover it (an object landing after this reading is for the next run).
    const watermarkMs = request.rebuild
      ? undefined
      : deps.delivery
        ? deliveryWatermark(await deps.delivery.readings(startedAtMs))
        : Infinity;
    // Objects whose notification was lost (or is still on its way) are marked now, before the marks are read.
    const reconciled = request.rebuild
      ? undefined
      : await reconcileLanded({ ...state, s3: deps.s3, bucket: deps.bucket }, startedAtMs);
    if (reconciled?.unmarked.length)
      deps.log?.(
        `batch run ${version}: ${reconciled.unmarked.length} landed objects had no mark (a lost notification), now marked`,
      );
    const [dirty, failing] = await Promise.all([readDirtyHours(state), readFailingHours(state)]);
    let due: DirtyHour[];
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
      due = [];
      for (let h = fromMs; h < toMs; h += HOUR_MS)
        due.push(dirty.find((d) => d.hourMs === h) ?? { hourMs: h, v: Number.NaN });
    } else {
      horizonMs = Math.max(
        previous?.horizonMs ?? 0,
        candidateHorizon(startedAtMs, deps.settings, watermarkMs),
      );
      due = dirty.filter((d) => d.hourMs < horizonMs).sort((a, b) => a.hourMs - b.hourMs);
      if (!previous && horizonMs <= 0) {
        // Nothing is proven landed yet (Firehose reports nothing): no horizon to publish, nothing to compute.
        return {
          outcome: 'skipped',
          detail: 'no horizon yet: the delivery watermark proves nothing landed',
          ...EMPTY,
        };
      }
    }
    // Days in order, each once; failing days after the others, and only once their backoff has passed.
    const days = byDay(due.slice(0, MAX_HOURS_PER_RUN).map((d) => d.hourMs));
    const isFailing = (day: { hours: number[] }) => day.hours.some((h) => failing.has(h));
    const ready = (day: { hours: number[] }) =>
      request.rebuild !== undefined ||
      day.hours.every((h) => (failing.get(h)?.nextAttemptAtMs ?? 0) <= startedAtMs);
    const ordered = [...days.filter((d) => !isFailing(d)), ...days.filter((d) => isFailing(d) && ready(d))];
    deps.log?.(
      `batch run ${version}: computing ${due.length} hours that received objects` +
        (due.length ? ` in [${toIso(due[0]!.hourMs)}, ${toIso(due[due.length - 1]!.hourMs + HOUR_MS)})` : ''),
    );

    const store: ViewStoreDeps = {
      s3: deps.s3,
      bucket: deps.bucket,
      documents: deps.documents,
      tableName: deps.viewsTable,
      ...(deps.onViewRequest ? { onRequest: deps.onViewRequest } : {}),
    };
    const totals: Computed = {
      queries: 0,
      rowsWritten: 0,
      objectsWritten: 0,
      objectsKept: 0,
      unstorable: [],
      replaced: [],
      withViews: new Map(),
    };
    const spanStore = { documents: deps.documents, tableName: deps.viewsTable };
    const spans = await readSiteSpans(spanStore);
    const computedHours = new Set<number>();
    let failedHours = 0;
    for (const day of ordered) {
      if (deps.deadlineMs !== undefined && deps.clock() >= deps.deadlineMs) break;
      try {
        const result = await computeDay(deps, store, day.dayMs, day.hours, version, spans);
        for (const [site, { first, last }] of result.withViews) {
          const known = spans.get(site);
          await widenSiteSpan(spanStore, known, site, first, last);
          spans.set(site, {
            site,
            firstHourMs: Math.min(first, known?.firstHourMs ?? first),
            lastHourMs: Math.max(last, known?.lastHourMs ?? last),
          });
        }
        totals.queries += result.queries;
        totals.rowsWritten += result.rowsWritten;
        totals.objectsWritten += result.objectsWritten;
        totals.objectsKept += result.objectsKept;
        totals.unstorable.push(...result.unstorable);
        totals.replaced.push(...result.replaced);
        for (const h of day.hours) computedHours.add(h);
        const cleared = day.hours.filter((h) => failing.has(h));
        if (cleared.length > 0) await clearFailures(state, cleared);
        for (const h of cleared) failing.delete(h);
      } catch (error) {
        // A rebuild is asked for by hand: its caller hears of the failure. A scheduled run goes on with the
        // other days, and H stays before this one.
        if (request.rebuild) throw error;
        failedHours += day.hours.length;
        const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        deps.log?.(
          `batch run ${version}: day ${toIso(day.dayMs).slice(0, 10)} failed, retried after a backoff: ${message}`,
        );
        const recorded = await recordFailures(
          state,
          day.hours,
          failing,
          message,
          startedAtMs,
          deps.settings.batchScheduleMinutes * MINUTE_MS,
        );
        for (const f of recorded) failing.set(f.hourMs, f);
      }
    }
    // H never passes a due hour this run did not compute (failed, out of time, in its backoff, or beyond
    // the most hours one run takes).
    const uncomputed = due.filter((d) => !computedHours.has(d.hourMs));
    if (!request.rebuild && uncomputed.length > 0)
      horizonMs = Math.max(previous?.horizonMs ?? 0, Math.min(horizonMs, uncomputed[0]!.hourMs));
    const hours = [...computedHours].sort((a, b) => a - b);
    // H covers every storable row: the refused ones are kept aside first, so none is lost.
    await setAsideUnstorable(deps, version, totals.unstorable);
    await deps.beforePublish?.();
    const horizon: HorizonState = {
      horizonMs,
      version,
      publishedAtMs: deps.clock(),
      computedFromMs: hours.length ? hours[0]! : horizonMs,
      computedToMs: hours.length ? hours[hours.length - 1]! + HOUR_MS : horizonMs,
    };
    const published = await publishHorizon(state, horizon);
    if (published)
      await clearDirtyHours(
        state,
        due.filter((d) => computedHours.has(d.hourMs) && !Number.isNaN(d.v)),
      );
    await collectGarbage(deps, store, version, totals.replaced);
    const hoursOverRetryBudget = [...failing.values()].filter((f) => f.attempts >= HOUR_RETRY_BUDGET).length;
    const deferredHours = uncomputed.length - failedHours;
    const detail = published
      ? `H = ${toIso(horizonMs)}; ${hours.length} hours computed, ${totals.rowsWritten} total rows and ` +
        `${totals.objectsWritten} view objects written (${totals.objectsKept} unchanged)` +
        (failedHours ? `; ${failedHours} hours failed` : '') +
        (deferredHours ? `; ${deferredHours} hours left for a later run` : '')
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
      queries: totals.queries,
      rowsWritten: totals.rowsWritten,
      objectsWritten: totals.objectsWritten,
      objectsKept: totals.objectsKept,
      unstorableRows: totals.unstorable.length,
      failedHours,
      hoursOverRetryBudget,
      deferredHours,
      unmarkedObjects: reconciled?.unmarked.length ?? 0,
      ...(request.rebuild
        ? {}
        : { candidateLagMs: Math.max(0, clockHorizon(startedAtMs, deps.settings) - horizonMs) }),
      ...(watermarkMs !== undefined && Number.isFinite(watermarkMs) ? { watermarkMs } : {}),
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
