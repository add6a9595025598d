import { randomUUID } from 'node:crypto';
import { DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { HorizonState } from '../counts.js';
import { conditionally } from '../dynamodb.js';

/**
 * The batch layer's state in the batch-state table: the published horizon, a run lease, the last run.
 * Every write that matters is conditional, so concurrent or repeated runs cannot move H backwards.
 */

export interface StateDeps {
  readonly documents: DynamoDBDocumentClient;
  readonly tableName: string;
}

const HORIZON_KEY = { pk: 'horizon', sk: 'current' };
const LEASE_KEY = { pk: 'lease', sk: 'batch' };
const LAST_RUN_KEY = { pk: 'run', sk: 'last' };

export async function readHorizonState(deps: StateDeps): Promise<HorizonState | undefined> {
  const { Item } = await deps.documents.send(
    new GetCommand({ TableName: deps.tableName, Key: HORIZON_KEY, ConsistentRead: true }),
  );
  if (!Item) return undefined;
  return {
    horizonMs: Item.horizonMs as number,
    version: Item.version as string,
    publishedAtMs: Item.publishedAtMs as number,
    computedFromMs: Item.computedFromMs as number,
    computedToMs: Item.computedToMs as number,
  };
}

/** Publishes a new horizon state unless a later H is already published. Returns false if refused. */
export async function publishHorizon(deps: StateDeps, state: HorizonState): Promise<boolean> {
  return conditionally(
    deps.documents.send(
      new PutCommand({
        TableName: deps.tableName,
        Item: { ...HORIZON_KEY, ...state },
        ConditionExpression: 'attribute_not_exists(pk) OR horizonMs <= :h',
        ExpressionAttributeValues: { ':h': state.horizonMs },
      }),
    ),
  );
}

export interface Lease {
  readonly owner: string;
  release(): Promise<void>;
}

/** Takes the run lease if it is free or expired; undefined when another run holds it. */
export async function acquireLease(
  deps: StateDeps,
  nowMs: number,
  durationMs: number,
): Promise<Lease | undefined> {
  const owner = randomUUID();
  const taken = await conditionally(
    deps.documents.send(
      new PutCommand({
        TableName: deps.tableName,
        Item: { ...LEASE_KEY, owner, expiresAtMs: nowMs + durationMs },
        ConditionExpression: 'attribute_not_exists(pk) OR expiresAtMs < :now',
        ExpressionAttributeValues: { ':now': nowMs },
      }),
    ),
  );
  if (!taken) return undefined;
  return {
    owner,
    async release() {
      // A failed condition means the lease expired and another run holds it now: nothing of ours to release.
      await conditionally(
        deps.documents.send(
          new DeleteCommand({
            TableName: deps.tableName,
            Key: LEASE_KEY,
            ConditionExpression: '#owner = :owner',
            ExpressionAttributeNames: { '#owner': 'owner' },
            ExpressionAttributeValues: { ':owner': owner },
          }),
        ),
      );
    },
  };
}

/**
 * Releases the lease whoever holds it: only for a caller that knows no run can be in flight (the local stack
 * when it starts its own emulators: a lease left in its tables is that of a run its last stop abandoned).
 */
export async function clearLease(deps: StateDeps): Promise<void> {
  await deps.documents.send(new DeleteCommand({ TableName: deps.tableName, Key: LEASE_KEY }));
}

export interface RunRecord {
  readonly startedAtMs: number;
  readonly finishedAtMs: number;
  readonly outcome: 'published' | 'skipped' | 'failed';
  readonly detail: string;
  readonly horizonMs?: number;
}

export async function recordRun(deps: StateDeps, run: RunRecord): Promise<void> {
  await deps.documents.send(new PutCommand({ TableName: deps.tableName, Item: { ...LAST_RUN_KEY, ...run } }));
}

export async function readLastRun(deps: StateDeps): Promise<RunRecord | undefined> {
  const { Item } = await deps.documents.send(
    new GetCommand({ TableName: deps.tableName, Key: LAST_RUN_KEY }),
  );
  return Item ? (Item as unknown as RunRecord) : undefined;
}
