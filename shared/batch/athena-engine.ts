import {
  GetQueryExecutionCommand,
  StartQueryExecutionCommand,
  StopQueryExecutionCommand,
  type AthenaClient,
} from '@aws-sdk/client-athena';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { loadSql, type SqlEngine, type SqlName, type ViewRow } from '../sql/index.js';
import { viewRowsFromCsv } from './athena-results.js';

/**
 * The batch SQL on Athena (engine v3): StartQueryExecution in the batch workgroup (which enforces the result
 * location and the bytes-scanned cutoff), polling with backoff, and the result streamed from its CSV file in
 * the result location (shared/batch/athena-results.ts), a chunk of rows at a time.
 */

export interface AthenaEngineOptions {
  readonly athena: AthenaClient;
  /** Reads the result file; the batch role may read the workgroup's result location. */
  readonly s3: S3Client;
  readonly workgroup: string;
  readonly database: string;
  /** Give up on a query after this long. @default 600000 */
  readonly timeoutMs?: number;
  /**
   * Time left in the invocation (Lambda's `getRemainingTimeInMillis`): waiting stops `reserveMs` before it runs
   * out, so that the run can stop the query, release its lease and record itself before Lambda ends it.
   */
  readonly remainingTimeMs?: () => number;
  /** What a run needs after its query: results, view writes, publishing. @default QUERY_RESERVE_MS */
  readonly reserveMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly clock?: () => number;
}

/** Time kept free after waiting on a query, out of the batch function's 10 minutes (infra/batch-layer.ts). */
export const QUERY_RESERVE_MS = 3 * 60_000;

export class AthenaQueryError extends Error {
  override readonly name: string = 'AthenaQueryError';
}

/** A query still running when waiting had to stop; it was stopped (StopQueryExecution). */
export class AthenaQueryTimeoutError extends AthenaQueryError {
  override readonly name = 'AthenaQueryTimeoutError';
}

/** Athena execution parameters are SQL literals: strings go in quoted. */
export const athenaLiteral = (value: string): string => `'${value.replace(/'/g, "''")}'`;

export function createAthenaEngine(options: AthenaEngineOptions): SqlEngine {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const clock = options.clock ?? Date.now;
  return {
    async *query(name: SqlName, parameters: readonly string[]): AsyncGenerator<ViewRow[]> {
      const { QueryExecutionId: id } = await options.athena.send(
        new StartQueryExecutionCommand({
          QueryString: loadSql(name),
          ExecutionParameters: parameters.map(athenaLiteral),
          WorkGroup: options.workgroup,
          QueryExecutionContext: { Database: options.database },
        }),
      );
      const started = clock();
      const waitMs = Math.min(
        options.timeoutMs ?? 600_000,
        (options.remainingTimeMs?.() ?? Infinity) - (options.reserveMs ?? QUERY_RESERVE_MS),
      );
      let outputLocation: string | undefined;
      for (let delay = 250; ; delay = Math.min(5000, delay * 2)) {
        const { QueryExecution } = await options.athena.send(
          new GetQueryExecutionCommand({ QueryExecutionId: id }),
        );
        const state = QueryExecution?.Status?.State;
        if (state === 'SUCCEEDED') {
          outputLocation = QueryExecution?.ResultConfiguration?.OutputLocation;
          break;
        }
        if (state === 'FAILED' || state === 'CANCELLED') {
          throw new AthenaQueryError(
            `${name} ${state}: ${QueryExecution?.Status?.StateChangeReason ?? 'no reason given'}`,
          );
        }
        if (clock() - started >= waitMs) {
          // Left running, the query would go on scanning (and billing) after the run has given up on it.
          await options.athena.send(new StopQueryExecutionCommand({ QueryExecutionId: id }));
          throw new AthenaQueryTimeoutError(
            `${name} still ${state} after ${clock() - started} ms; stopped it to leave the run time to finish`,
          );
        }
        await sleep(Math.max(0, Math.min(delay, waitMs - (clock() - started))));
      }
      const location = outputLocation ?? '';
      const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(location);
      if (!match)
        throw new AthenaQueryError(`${name}: no result location for query ${id} (got "${location}")`);
      const object = await options.s3.send(new GetObjectCommand({ Bucket: match[1], Key: match[2] }));
      yield* viewRowsFromCsv(object.Body as AsyncIterable<Uint8Array>);
    },
  };
}
