import { DeleteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { conditionally, queryAll } from '../dynamodb.js';
import { hourKey } from '../keys.js';
import type { StateDeps } from './state.js';

/**
 * The catalog of landed raw objects: which event hours received objects since a batch run last computed them.
 * S3 announces every object created under `raw/` (EventBridge on AWS, a listing stand-in locally), and each
 * announcement marks its `dt=/hour=` partition dirty in the batch-state table:
 *   pk = `dirty`, sk = `<YYYY-MM-DDTHH>`, objects (count), v (bumped by every mark), lastKey
 * A batch run computes the dirty hours before its horizon and then clears each mark only if no object
 * arrived meanwhile (its `v` is what the run read), so a mark can be seen late but never lost: late events of
 * any age are folded in by the next run, and a run with nothing new computes nothing.
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

/** Marks the hours of landed objects dirty. Keys that are not raw partition objects are ignored. */
export async function markLanded(deps: StateDeps, keys: readonly string[], nowMs: number): Promise<number> {
  const byHour = new Map<number, string[]>();
  for (const key of keys) {
    const hourMs = rawObjectHour(key);
    if (hourMs !== undefined) byHour.set(hourMs, [...(byHour.get(hourMs) ?? []), key]);
  }
  for (const [hourMs, hourKeys] of byHour) {
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
