import { createHash } from 'node:crypto';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { BatchGetCommand, DeleteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { allLimited } from '../concurrency.js';
import { conditionally, queryAll } from '../dynamodb.js';
import { hourKey } from '../time.js';
import { PREFIXES } from '../resources.js';
import { DAY_MS, hourBucket, HOUR_MS, hourPartitionPath, MINUTE_MS } from '../time.js';
import type { StateDeps } from './state.js';

/**
 * The catalog of landed raw objects: which event hours received objects since a batch run last computed them.
 * S3 announces every object created under `raw/` (EventBridge on AWS, a listing stand-in locally), and each
 * announcement marks its `dt=/hour=` partition dirty in the batch-state table:
 *   pk = `dirty`, sk = `<YYYY-MM-DDTHH>`, objects (count), v (bumped by every mark), lastKey
 * A batch run computes the dirty hours before its horizon and then clears each mark only if no object
 * arrived meanwhile (its `v` is what the run read), so a mark can be seen late but never lost: late events of
 * any age are folded in by the next run, and a run with nothing new computes nothing.
 *
 * A notification can also be lost (dropped, or failed past its retries: the catalog target has a dead-letter
 * queue and an alarm). So every mark also adds the object to its hour's set of landed objects
 * (`pk = landed`, `sk = <hour>`, a string set of key digests, expiring after the reconciliation window), and
 * each scheduled run reconciles the partitions of the last `RECONCILE_HOURS`: it lists them and marks any
 * object the set does not hold, so a lost notification costs at most one run (docs/faults.md).
 */

const RAW_KEY = /^raw\/dt=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\/[^/]+$/;

/** The event hour of a raw object's key, or undefined when the key is not a raw partition object. */
export function rawObjectHour(key: string): number | undefined {
  const match = RAW_KEY.exec(key);
  if (!match) return undefined;
  const ms = Date.parse(`${match[1]}T${match[2]}:00:00Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

export interface DirtyHour {
  readonly hourMs: number;
  /** The mark's version when read: clearing succeeds only if it is unchanged. */
  readonly v: number;
}

/** Event hours whose partitions each run reconciles (the last two days, and the hour ahead). */
export const RECONCILE_HOURS = 48;

/** An object key as the landed sets hold it: 96 bits of its SHA-256 (16 base64url characters). */
export const landedDigest = (key: string): string =>
  createHash('sha256').update(key).digest('base64url').slice(0, 16);

const landedKey = (hourMs: number) => ({ pk: 'landed', sk: hourKey(hourMs) });

/** Marks the hours of landed objects dirty. Keys that are not raw partition objects are ignored. */
export async function markLanded(deps: StateDeps, keys: readonly string[], nowMs: number): Promise<number> {
  const byHour = new Map<number, string[]>();
  for (const key of keys) {
    const hourMs = rawObjectHour(key);
    if (hourMs !== undefined) byHour.set(hourMs, [...(byHour.get(hourMs) ?? []), key]);
  }
  for (const [hourMs, hourKeys] of byHour) {
    // The landed set first: a mark whose object is in the set is one reconciliation will not repeat.
    await deps.documents.send(
      new UpdateCommand({
        TableName: deps.tableName,
        Key: landedKey(hourMs),
        UpdateExpression: 'ADD objects :digests SET expiresAt = :expires',
        ExpressionAttributeValues: {
          ':digests': new Set(hourKeys.map(landedDigest)),
          ':expires': Math.ceil((Math.max(hourMs, nowMs) + RECONCILE_HOURS * HOUR_MS + DAY_MS) / 1000),
        },
      }),
    );
    await deps.documents.send(
      new UpdateCommand({
        TableName: deps.tableName,
        Key: { pk: 'dirty', sk: hourKey(hourMs) },
        UpdateExpression: 'ADD objects :n, v :one SET hourMs = :h, lastKey = :k, markedAtMs = :now',
        ExpressionAttributeValues: {
          ':n': hourKeys.length,
          ':one': 1,
          ':h': hourMs,
          ':k': hourKeys[hourKeys.length - 1],
          ':now': nowMs,
        },
      }),
    );
  }
  return byHour.size;
}

/** Every dirty hour, oldest first. */
export async function readDirtyHours(deps: StateDeps): Promise<DirtyHour[]> {
  const items = await queryAll(deps.documents, {
    TableName: deps.tableName,
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': 'dirty' },
    ConsistentRead: true,
  });
  return items.map((item) => ({ hourMs: item.hourMs as number, v: item.v as number }));
}

/** Clears the marks a run computed; a mark that moved on since (a newer object) stays for the next run. */
export async function clearDirtyHours(deps: StateDeps, hours: readonly DirtyHour[]): Promise<number> {
  let cleared = 0;
  for (const hour of hours) {
    const done = await conditionally(
      deps.documents.send(
        new DeleteCommand({
          TableName: deps.tableName,
          Key: { pk: 'dirty', sk: hourKey(hour.hourMs) },
          ConditionExpression: 'v = :v',
          ExpressionAttributeValues: { ':v': hour.v },
        }),
      ),
    );
    if (done) cleared += 1;
  }
  return cleared;
}

export interface ReconcileDeps extends StateDeps {
  readonly s3: S3Client;
  readonly bucket: string;
}

export interface Reconciled {
  /** Partitions listed, objects found in them, and the objects no notification had marked. */
  readonly partitions: number;
  readonly objects: number;
  readonly unmarked: readonly string[];
}

/**
 * Lists the raw partitions of the last `hours` event hours (and the next one: events may be 15 minutes ahead)
 * and marks every object that its hour's landed set does not hold: one LIST per partition and one BatchGetItem
 * per 100 hours, whatever happened, and a mark only for what a lost notification left unmarked.
 */
export async function reconcileLanded(
  deps: ReconcileDeps,
  nowMs: number,
  hours = RECONCILE_HOURS,
): Promise<Reconciled> {
  const last = hourBucket(nowMs + 15 * MINUTE_MS);
  const window = Array.from({ length: hours + 1 }, (_, i) => last - (hours - i) * HOUR_MS);
  const landed = new Map<number, Set<string>>();
  for (let i = 0; i < window.length; i += 100) {
    let keys: Record<string, unknown>[] = window.slice(i, i + 100).map(landedKey);
    while (keys.length > 0) {
      const response = await deps.documents.send(
        new BatchGetCommand({
          RequestItems: { [deps.tableName]: { Keys: keys, ProjectionExpression: 'sk, objects' } },
        }),
      );
      for (const item of response.Responses?.[deps.tableName] ?? [])
        landed.set(Date.parse(`${item.sk as string}:00:00Z`), item.objects as Set<string>);
      keys = (response.UnprocessedKeys?.[deps.tableName]?.Keys ?? []) as Record<string, unknown>[];
    }
  }
  const unmarked: string[] = [];
  let objects = 0;
  await allLimited(window, 8, async (hourMs) => {
    const set = landed.get(hourMs) ?? new Set<string>();
    let token: string | undefined;
    do {
      const page = await deps.s3.send(
        new ListObjectsV2Command({
          Bucket: deps.bucket,
          Prefix: `${PREFIXES.raw}${hourPartitionPath(hourMs)}/`,
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      for (const object of page.Contents ?? []) {
        objects += 1;
        if (!set.has(landedDigest(object.Key!))) unmarked.push(object.Key!);
      }
      token = page.NextContinuationToken;
    } while (token);
  });
  if (unmarked.length > 0) await markLanded(deps, unmarked, nowMs);
  return { partitions: window.length, objects, unmarked };
}
