import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { HorizonState } from '../counts.js';
import { PREFIXES, type Settings } from '../resources.js';
import type { SqlEngine } from '../sql/index.js';
import { DAY_MS, hourBucket, HOUR_MS, hourPartition, MINUTE_MS, toIso } from '../time.js';
import { acquireLease, publishHorizon, readHorizonState, recordRun } from './state.js';
import { writeViews, type UnstorableRow } from './views.js';

/**
 * One batch run: choose the hours, compute their views with the SQL engine, write them, and only then
 * publish the horizon H. H is the first hour not covered and only moves forward.
 *
 * H is set conservatively: an event lands in S3 at most `firehoseBufferSeconds` after it reached the stream,
 * so H = the hour boundary at or before now − buffer − safety margin. Hours before H that a later run still
 * recomputes (the trailing window) fold in events that reached the stream late.
 */

export const SAFETY_MARGIN_MS = 5 * MINUTE_MS;
/** Longest stretch one run computes; a first run over a long history catches up over several runs. */
export const MAX_HOURS_PER_RUN = 14 * 24;
export const LEASE_MS = 15 * MINUTE_MS;

export interface BatchDeps {
  readonly engine: SqlEngine;
  readonly documents: DynamoDBDocumentClient;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly viewsTable: string;
  readonly stateTable: string;
  readonly settings: Settings;
  readonly clock: () => number;
  /** Test hook: runs after the views are written and before H is published (a crash point). */
  readonly beforePublish?: () => Promise<void>;
  readonly log?: (message: string) => void;
}

export interface BatchRequest {
  /** A rebuild of [fromMs, toMs), hour-aligned: recomputes views there and leaves H where it is. */
  readonly rebuild?: { readonly fromMs: number; readonly toMs: number };
}

export interface RunSummary {
  readonly outcome: 'published' | 'skipped';
  readonly detail: string;
  readonly horizon?: HorizonState;
  readonly hourRows: number;
  readonly dayRows: number;
  /** Rows the views table refused for good: kept under dead-letter/batch/ (and alarmed), not retried. */
  readonly unstorableRows: number;
  readonly queries: number;
}

export class BatchRangeError extends Error {
  override readonly name = 'BatchRangeError';
}

/** The newest H a run at `nowMs` may publish. */
export function candidateHorizon(nowMs: number, settings: Settings): number {
  return hourBucket(nowMs - settings.firehoseBufferSeconds * 1000 - SAFETY_MARGIN_MS);
}

/**
 * The first hour that has raw data: keys list in order, and `dt=…/hour=…` sorts by time, so the first key
 * of the first page tells. (No MaxKeys: s3rver fails on MaxKeys=1 when more keys follow.)
 */
export async function earliestRawHour(s3: S3Client, bucket: string): Promise<number | undefined> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: PREFIXES.raw }));
  const match = /^raw\/dt=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\//.exec(page.Contents?.[0]?.Key ?? '');
  return match ? Date.parse(`${match[1]}T${match[2]}:00:00Z`) : undefined;
}

/** Hour partitions of [fromMs, toMs), grouped by day: one hourly query per day. */
export function dayChunks(
  fromMs: number,
  toMs: number,
): { dt: string; fromHour: string; toHour: string; partitions: string[] }[] {
  const chunks: { dt: string; fromHour: string; toHour: string; partitions: string[] }[] = [];
  for (let t = fromMs; t < toMs;) {
    const dayEnd = Math.floor(t / DAY_MS) * DAY_MS + DAY_MS;
    const end = Math.min(dayEnd, toMs);
    const { dt, hour } = hourPartition(t);
    const partitions: string[] = [];
    for (let h = t; h < end; h += HOUR_MS) {
      const p = hourPartition(h);
      partitions.push(`dt=${p.dt}/hour=${p.hour}`);
    }
    const toHour = end === dayEnd ? '24' : hourPartition(end).hour;
    chunks.push({ dt, fromHour: hour, toHour, partitions });
    t = end;
  }
  return chunks;
}

/** Days wholly before `toMs` that [fromMs, toMs) touches: their daily views are (re)computed. */
export function completedDays(fromMs: number, toMs: number): number[] {
  const days: number[] = [];
  for (let d = Math.floor(fromMs / DAY_MS) * DAY_MS; d + DAY_MS <= toMs; d += DAY_MS) days.push(d);
  return days;
}

async function computeRange(deps: BatchDeps, fromMs: number, toMs: number, version: string) {
  let hourRows = 0;
  let dayRows = 0;
  let queries = 0;
  const unstorable: UnstorableRow[] = [];
  const store = { documents: deps.documents, tableName: deps.viewsTable };
  for (const chunk of dayChunks(fromMs, toMs)) {
    const rows = await deps.engine.query(
      'hourly_views',
      [chunk.dt, chunk.fromHour, chunk.toHour],
      chunk.partitions,
    );
    queries += 1;
    const outcome = await writeViews(store, 'hour', rows, version);
    hourRows += outcome.written;
    unstorable.push(...outcome.unstorable);
  }
  const days = completedDays(fromMs, toMs);
  if (days.length > 0) {
    const first = days[0]!;
    const end = days[days.length - 1]! + DAY_MS;
    const partitions = dayChunks(first, end).flatMap((c) => c.partitions);
    const rows = await deps.engine.query(
      'daily_views',
      [toIso(first).slice(0, 10), toIso(end).slice(0, 10)],
      partitions,
    );
    queries += 1;
    const outcome = await writeViews(store, 'day', rows, version);
    dayRows += outcome.written;
    unstorable.push(...outcome.unstorable);
  }
  return { hourRows, dayRows, queries, unstorable };
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

export async function runBatch(deps: BatchDeps, request: BatchRequest = {}): Promise<RunSummary> {
  const state = { documents: deps.documents, tableName: deps.stateTable };
  const startedAtMs = deps.clock();
  const lease = await acquireLease(state, startedAtMs, LEASE_MS);
  if (!lease) {
    return {
      outcome: 'skipped',
      detail: 'another batch run holds the lease',
      hourRows: 0,
      dayRows: 0,
      unstorableRows: 0,
      queries: 0,
    };
  }
  try {
    const previous = await readHorizonState(state);
    const version = `${toIso(startedAtMs)}-${lease.owner.slice(0, 8)}`;
    let fromMs: number;
    let toMs: number;
    let horizonMs: number;
    if (request.rebuild) {
      ({ fromMs, toMs } = request.rebuild);
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
    } else {
      const candidate = candidateHorizon(startedAtMs, deps.settings);
      if (previous) {
        fromMs = Math.min(previous.horizonMs, candidate) - deps.settings.trailingWindowHours * HOUR_MS;
      } else {
        fromMs = (await earliestRawHour(deps.s3, deps.bucket)) ?? candidate;
      }
      fromMs = Math.min(fromMs, candidate);
      horizonMs = Math.max(
        previous?.horizonMs ?? 0,
        Math.min(candidate, fromMs + MAX_HOURS_PER_RUN * HOUR_MS),
      );
      toMs = horizonMs;
    }
    deps.log?.(`batch run ${version}: computing [${toIso(fromMs)}, ${toIso(toMs)})`);
    const { unstorable, ...computed } = await computeRange(deps, fromMs, toMs, version);
    // H covers every storable row: the refused ones are kept aside first, so none is lost.
    await setAsideUnstorable(deps, version, unstorable);
    await deps.beforePublish?.();
    const horizon: HorizonState = {
      horizonMs,
      version,
      publishedAtMs: deps.clock(),
      computedFromMs: fromMs,
      computedToMs: toMs,
    };
    const published = await publishHorizon(state, horizon);
    const detail = published
      ? `H = ${toIso(horizonMs)}; ${computed.hourRows} hourly and ${computed.dayRows} daily rows for [${toIso(fromMs)}, ${toIso(toMs)})`
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
