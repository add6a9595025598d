import {
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
  StopQueryExecutionCommand,
  type AthenaClient,
} from '@aws-sdk/client-athena';
import { decodeSqlSketch } from '../sketch/index.js';
import { loadSql, type SqlEngine, type SqlName, type ViewRow } from '../sql/index.js';

/**
 * The batch SQL on Athena (engine v3): StartQueryExecution in the batch workgroup (which enforces the result
 * location and the bytes-scanned cutoff), polling with backoff, results read with GetQueryResults.
 */

export interface AthenaEngineOptions {
  readonly athena: AthenaClient;
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
    async query(name: SqlName, parameters: readonly string[]): Promise<ViewRow[]> {
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
      for (let delay = 250; ; delay = Math.min(5000, delay * 2)) {
        const { QueryExecution } = await options.athena.send(
          new GetQueryExecutionCommand({ QueryExecutionId: id }),
        );
        const state = QueryExecution?.Status?.State;
        if (state === 'SUCCEEDED') break;
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
      const rows: ViewRow[] = [];
      let token: string | undefined;
      let header = true;
      do {
        const page = await options.athena.send(
          new GetQueryResultsCommand({ QueryExecutionId: id, ...(token ? { NextToken: token } : {}) }),
        );
        for (const row of page.ResultSet?.Rows ?? []) {
          if (header) {
            header = false;
            continue;
          }
          const data = row.Data ?? [];
          const [bucket, dimension, value, views, errors] = data.map((d) => d.VarCharValue ?? '');
          const [form, sketch] = [data[5]?.VarCharValue, data[6]?.VarCharValue];
          rows.push({
            bucketMs: Number(bucket),
            dimension: dimension!,
            value: value!,
            views: Number(views),
            errors: Number(errors),
            // Athena prints arrays as "[1, 2, 3]"; a row without visitor hashes has NULL (no VarCharValue).
            ...(form && sketch ? { visitors: decodeSqlSketch(form, sketch) } : {}),
          });
        }
        token = page.NextToken;
      } while (token);
      return rows;
    },
  };
}
