import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, inject } from 'vitest';
import type { PageViewsResponse } from '../../../shared/api-types.js';
import { createAwsClients, type AwsClients } from '../../../shared/aws-clients.js';
import {
  DEFAULT_SETTINGS,
  resourceNames,
  type ResourceNames,
  type RuntimeConfig,
  type Settings,
} from '../../../shared/resources.js';
import { createCatalogHandler } from '../../../lambdas/catalog/handler.js';
import { createBatchReader } from '../../../shared/batch/reader.js';
import { runBatch, type BatchDeps } from '../../../shared/batch/run.js';
import { runAs } from '../../../shared/call-ledger.js';
import type { BatchViewReader } from '../../../shared/counts.js';
import type { SqlEngine } from '../../../shared/sql/index.js';
import { createDuckDbEngine, type DuckDbEngine } from '../../../local/athena-duckdb.js';
import { FirehoseStandIn, type FirehoseStandInOptions, type FlushResult } from '../../../local/firehose.js';
import { S3NotificationStandIn } from '../../../local/s3-notifications.js';
import { provision } from '../../../local/provision.js';

/** A provisioned set of resources with names of its own, on the emulators the global setup started. */
export interface TestStack {
  readonly clients: AwsClients;
  readonly names: ResourceNames;
  readonly config: RuntimeConfig;
  readonly endpoints: { kinesis: string; dynamodb: string; s3: string };
  destroy(): void;
}

/** Resource names unique to one test: `t-<name>-<random>`. */
export function isolatedNames(name: string): ResourceNames {
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, 16)
    .replace(/-+$/, '');
  return resourceNames(`t-${slug}-${randomBytes(3).toString('hex')}`);
}

export async function testStack(
  name: string,
  options: { shards?: number; settings?: Partial<Settings> } = {},
): Promise<TestStack> {
  const emulators = inject('emulators');
  const clients = createAwsClients(emulators);
  const names = isolatedNames(name);
  await provision(clients, names, { shards: options.shards ?? 1 });
  return {
    clients,
    names,
    config: { names, settings: { ...DEFAULT_SETTINGS, ...options.settings } },
    endpoints: emulators.endpoints,
    destroy: () => clients.destroy(),
  };
}

const notifiers = new WeakMap<TestStack, S3NotificationStandIn>();

/**
 * Delivers S3's "Object Created" notifications for what landed under raw/ since the last call, so that the
 * batch layer's catalog marks those hours dirty (on AWS, EventBridge does this within a second).
 */
export async function notifyLanded(stack: TestStack): Promise<number> {
  let notifier = notifiers.get(stack);
  if (!notifier) {
    notifier = new S3NotificationStandIn({
      s3: stack.clients.s3,
      bucket: stack.names.bucket,
      handler: createCatalogHandler({ clients: stack.clients, config: stack.config }),
    });
    notifiers.set(stack, notifier);
  }
  return notifier.sync();
}

/**
 * Lands everything on the stack's stream in S3 through the Firehose stand-in, notifies the catalog (unless
 * `notify` is false), with buffers large enough that only draining flushes. Pass a `stateDir` to keep
 * checkpoints between landings.
 */
export async function landOnS3(
  stack: TestStack,
  {
    notify = true,
    ...options
  }: Partial<Pick<FirehoseStandInOptions, 'stateDir' | 'transform'>> & { notify?: boolean } = {},
): Promise<FlushResult> {
  const firehose = new FirehoseStandIn({
    kinesis: stack.clients.kinesis,
    s3: stack.clients.s3,
    streamName: stack.names.stream,
    bucket: stack.names.bucket,
    bufferSeconds: 3600,
    bufferBytes: 64 << 20,
    pollIntervalMs: 50,
    ...options,
  });
  await firehose.start();
  try {
    const flushed = await firehose.drain();
    if (notify) await notifyLanded(stack);
    return flushed;
  } finally {
    await firehose.stop();
  }
}

/**
 * The stack's clients with every write recorded: `<table>:<command>` for DynamoDB writes, `s3:<key>` for
 * objects put. Reads pass through unrecorded.
 */
export function countingWrites(clients: AwsClients): { clients: AwsClients; writes: string[] } {
  const writes: string[] = [];
  const tableWrites = new Set(['PutCommand', 'UpdateCommand', 'DeleteCommand', 'BatchWriteCommand']);
  const wrap = <C extends { send: (...args: never[]) => unknown }>(
    client: C,
    record: (command: never) => void,
  ) =>
    new Proxy(client, {
      get(target, property, receiver) {
        if (property !== 'send') return Reflect.get(target, property, receiver);
        return (command: never) => {
          record(command);
          return (target.send as (c: never) => unknown)(command);
        };
      },
    });
  const documents = wrap(
    clients.documents,
    (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = command.constructor.name;
      if (!tableWrites.has(name)) return;
      const tables =
        name === 'BatchWriteCommand'
          ? Object.keys(command.input.RequestItems as object)
          : [command.input.TableName];
      for (const table of tables) writes.push(`${String(table)}:${name}`);
    },
  );
  const s3 = wrap(
    clients.s3,
    (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      if (command.constructor.name === 'PutObjectCommand') writes.push(`s3:${String(command.input.Key)}`);
    },
  );
  return { clients: { ...clients, documents, s3 } as AwsClients, writes };
}

/** `GET /v1/pageviews` on a local stack's API, expecting 200. */
export async function getPageViews(
  apiUrl: string,
  query: Record<string, string>,
): Promise<PageViewsResponse> {
  const response = await fetch(`${apiUrl}/v1/pageviews?${new URLSearchParams(query).toString()}`);
  expect(response.status).toBe(200);
  return (await response.json()) as PageViewsResponse;
}

/** The local Athena (DuckDB) over the stack's bucket, with its Parquet cache in a temporary folder. */
export function localEngine(stack: TestStack): DuckDbEngine {
  return createDuckDbEngine({
    s3: stack.clients.s3,
    bucket: stack.names.bucket,
    cacheDir: mkdtempSync(join(tmpdir(), 'duck-')),
  });
}

/** A batch run's dependencies on the stack, on a clock that stands at `nowMs`. */
export function batchDeps(
  stack: TestStack,
  engine: SqlEngine,
  nowMs: number,
  extra: Partial<BatchDeps> = {},
): BatchDeps {
  return {
    engine,
    documents: stack.clients.documents,
    s3: stack.clients.s3,
    bucket: stack.names.bucket,
    viewsTable: stack.names.tables.batchViews,
    stateTable: stack.names.tables.batchState,
    settings: stack.config.settings,
    clock: () => nowMs,
    ...extra,
  };
}

/** One run of the batch layer's code as the batch function runs it: the call ledger records its calls. */
export const batchRun = (deps: BatchDeps, request?: Parameters<typeof runBatch>[1]) =>
  runAs('batch', () => runBatch(deps, request));

/** The batch views' reader on the stack. */
export function batchReader(stack: TestStack): BatchViewReader {
  return createBatchReader({
    documents: stack.clients.documents,
    s3: stack.clients.s3,
    bucket: stack.names.bucket,
    viewsTable: stack.names.tables.batchViews,
    stateTable: stack.names.tables.batchState,
  });
}
