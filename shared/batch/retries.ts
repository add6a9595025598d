import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { queryAll } from '../dynamodb.js';
import { hourKey } from '../time.js';
import type { StateDeps } from './state.js';

/**
 * Hours whose computation failed, in the batch-state table (`pk = failing`, `sk = <hour>`), so that one bad
 * hour cannot stall the batch layer: a run computes the other hours first, retries a failing one only once its
 * backoff has passed (and only with time left), and H stays before it until it succeeds. An hour that failed
 * `HOUR_RETRY_BUDGET` times in a row counts in the `FailingHours` metric, which is alarmed.
 */

/** Failed attempts after which an hour is alarmed (it is still retried, at the longest backoff). */
export const HOUR_RETRY_BUDGET = 3;
/** The longest wait between attempts, in schedule periods: 1, 2, 4, 4, … periods after each failure. */
export const MAX_BACKOFF_PERIODS = 4;

export interface FailingHour {
  readonly hourMs: number;
  readonly attempts: number;
  readonly lastError: string;
  /** Not retried before this instant. */
  readonly nextAttemptAtMs: number;
}

export async function readFailingHours(deps: StateDeps): Promise<Map<number, FailingHour>> {
  const items = await queryAll(deps.documents, {
    TableName: deps.tableName,
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': 'failing' },
    ConsistentRead: true,
  });
  return new Map(
    items.map((item) => [
      item.hourMs as number,
      {
        hourMs: item.hourMs as number,
        attempts: item.attempts as number,
        lastError: item.lastError as string,
        nextAttemptAtMs: item.nextAttemptAtMs as number,
      },
    ]),
  );
}

/** Records one more failed attempt of each hour, with its backoff. */
export async function recordFailures(
  deps: StateDeps,
  hours: readonly number[],
  known: ReadonlyMap<number, FailingHour>,
  error: string,
  nowMs: number,
  periodMs: number,
): Promise<FailingHour[]> {
  const recorded: FailingHour[] = [];
  for (const hourMs of hours) {
    const attempts = (known.get(hourMs)?.attempts ?? 0) + 1;
    const wait = Math.min(2 ** (attempts - 1), MAX_BACKOFF_PERIODS) * periodMs;
    // Just before the run `wait` from now, so that the schedule's jitter cannot skip it.
    const failing = {
      hourMs,
      attempts,
      lastError: error.slice(0, 1000),
      nextAttemptAtMs: nowMs + wait - 60_000,
    };
    await deps.documents.send(
      new PutCommand({ TableName: deps.tableName, Item: { pk: 'failing', sk: hourKey(hourMs), ...failing } }),
    );
    recorded.push(failing);
  }
  return recorded;
}

export async function clearFailures(deps: StateDeps, hours: readonly number[]): Promise<void> {
  for (const hourMs of hours)
    await deps.documents.send(
      new DeleteCommand({ TableName: deps.tableName, Key: { pk: 'failing', sk: hourKey(hourMs) } }),
    );
}
