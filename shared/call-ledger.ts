import { AsyncLocalStorage } from 'node:async_hooks';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The call ledger: every AWS call a function's code makes, with the function it runs as, so that a test can
 * evaluate each call against that function's role in the synthesized template (docs/aws-fidelity.md).
 *
 * Handlers declare what they run as with `runAs` (their factories do, so the local stand-ins, the tests that
 * drive handlers directly and the bundled Lambda code all tag alike). Recording is on only when
 * `PAGEVIEWS_CALL_LEDGER` names a folder (the integration tests set it): then every client from
 * shared/aws-clients.ts appends one JSON line per distinct call to `<folder>/<pid>.jsonl`. Otherwise nothing
 * is installed and a handler pays one AsyncLocalStorage.run per invocation.
 */

export const LEDGER_ENV = 'PAGEVIEWS_CALL_LEDGER';

/** The functions of the stack, by the folder of their handler under lambdas/. */
export const FUNCTIONS = ['speed', 'ingest', 'batch', 'catalog', 'api', 'collect', 'origin-secret'] as const;
export type FunctionName = (typeof FUNCTIONS)[number];

/** One line of the ledger. `input` keeps only the fields that decide an IAM action or resource. */
export interface LedgerEntry {
  readonly kind: 'call' | 'invoke';
  readonly fn: FunctionName;
  readonly service?: string;
  readonly operation?: string;
  readonly input?: Record<string, unknown>;
  /** The error's name when the call failed (e.g. NoSuchKey, ConditionalCheckFailedException). */
  readonly error?: string;
}

const running = new AsyncLocalStorage<FunctionName>();

/** Runs `body` as function `fn`: AWS calls made inside it, however deep, are recorded as that function's. */
export function runAs<T>(fn: FunctionName, body: () => T): T {
  record({ kind: 'invoke', fn });
  return running.run(fn, body);
}

/** Input fields that name a resource or change which action or condition applies. */
const KEPT_FIELDS = [
  'TableName',
  'IndexName',
  'ConsistentRead',
  'ReturnValues',
  'ReturnConsumedCapacity',
  'Select',
  'Bucket',
  'Key',
  'Prefix',
  'StreamName',
  'StreamARN',
  'SecretId',
  // A CloudFront distribution's id (GetDistributionConfig, UpdateDistribution).
  'Id',
  'WorkGroup',
  'QueryString',
  'QueryExecutionContext',
  'ResultConfiguration',
  'StackName',
] as const;

function summarize(input: Record<string, unknown>): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const field of KEPT_FIELDS) if (input[field] !== undefined) kept[field] = input[field];
  // An S3 key names the object; a DynamoDB key is item data, which no IAM decision here depends on.
  if (typeof kept.Key !== 'string') delete kept.Key;
  // Batch operations name their resources inside: the tables of a BatchWriteItem (with the kinds of request, Put
  // or Delete) or of a BatchGetItem (whose entry is one { Keys } object), the keys of a DeleteObjects.
  if (input.RequestItems && typeof input.RequestItems === 'object') {
    kept.RequestItems = Object.fromEntries(
      Object.entries(input.RequestItems as Record<string, unknown>).map(([table, requests]) => [
        table,
        Array.isArray(requests) ? [...new Set(requests.map((r) => Object.keys(r as object)[0]))] : ['Keys'],
      ]),
    );
  }
  const objects = (input.Delete as { Objects?: { Key?: string }[] } | undefined)?.Objects;
  if (objects) kept.DeleteKeys = objects.map((o) => o.Key);
  return kept;
}

const seen = new Set<string>();

function record(entry: LedgerEntry): void {
  const folder = process.env[LEDGER_ENV];
  if (!folder) return;
  const line = JSON.stringify(entry);
  if (seen.has(line)) return;
  seen.add(line);
  mkdirSync(folder, { recursive: true });
  appendFileSync(join(folder, `${process.pid}.jsonl`), line + '\n');
}

interface MiddlewareTarget {
  readonly middlewareStack: {
    add(
      middleware: (
        next: (args: { input: object }) => Promise<unknown>,
        context: { commandName?: string },
      ) => (args: { input: object }) => Promise<unknown>,
      options: { step: 'initialize'; name: string },
    ): void;
  };
}

/** Adds the recorder to a client when the ledger is on (shared/aws-clients.ts calls this for every client). */
export function recordCalls<C>(client: C, service: string): C {
  if (!process.env[LEDGER_ENV]) return client;
  (client as MiddlewareTarget).middlewareStack.add(
    (next, context) => async (args) => {
      const fn = running.getStore();
      if (!fn) return next(args);
      const call = {
        kind: 'call' as const,
        fn,
        service,
        operation: (context.commandName ?? 'Unknown').replace(/Command$/, ''),
        input: summarize(args.input as Record<string, unknown>),
      };
      try {
        const output = await next(args);
        record(call);
        return output;
      } catch (error) {
        record({ ...call, error: (error as Error).name });
        throw error;
      }
    },
    { step: 'initialize', name: 'callLedger' },
  );
  return client;
}
