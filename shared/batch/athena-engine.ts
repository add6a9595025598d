import {
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
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
  readonly sleep?: (ms: number) => Promise<void>;
}

export class AthenaQueryError extends Error {
  override readonly name = 'AthenaQueryError';
}

/** Athena execution parameters are SQL literals: strings go in quoted. */
export const athenaLiteral = (value: string): string => `'${value.replace(/'/g, "''")}'`;

export function createAthenaEngine(options: AthenaEngineOptions): SqlEngine {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
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
      const deadline = Date.now() + (options.timeoutMs ?? 600_000);
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
        if (Date.now() > deadline)
          throw new AthenaQueryError(`${name} still ${state} after ${options.timeoutMs ?? 600_000} ms`);
        await sleep(delay);
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
