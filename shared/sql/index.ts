import { readFileSync } from 'node:fs';
import type { VisitorSketch } from '../sketch/index.js';

/**
 * The batch views' SQL: one text for Athena (Trino) and DuckDB. The files sit beside this module; the
 * bundled batch Lambda has them copied beside its index.mjs (infra/batch-layer.ts), so the same relative
 * URL resolves in both places.
 */

export const SQL_NAMES = ['hourly_views'] as const;
export type SqlName = (typeof SQL_NAMES)[number];

const cache = new Map<SqlName, string>();

export function loadSql(name: SqlName): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(new URL(`./${name}.sql`, import.meta.url), 'utf8');
    cache.set(name, text);
  }
  return text;
}

/** One output row of a batch-view query. */
export interface ViewRow {
  /** The site the row counts for: every view row belongs to one. */
  readonly site: string;
  readonly bucketMs: number;
  readonly dimension: string;
  readonly value: string;
  readonly views: number;
  /** Page views with status 400 or above. */
  readonly errors: number;
  /** Distinct visitors as a sketch (absent for rows without a visitor hash). */
  readonly visitors?: VisitorSketch;
}

/** The SQL engine behind the batch layer: Athena on AWS, DuckDB locally. */
export interface SqlEngine {
  /**
   * Runs a named query with positional parameters (strings). Its rows come in chunks of a few thousand, so that
   * no caller has to hold a whole result (an hour of a million urls is millions of rows).
   * @param partitions the raw partitions (`dt=…/hour=…`) the query may touch: a local engine fetches only
   *   these; Athena prunes by the SQL's own predicate.
   */
  query(
    name: SqlName,
    parameters: readonly string[],
    partitions: readonly string[],
  ): AsyncIterable<readonly ViewRow[]>;
}

/** Every row of a query, in one array: for results known to be small (tests, benchmarks' baselines). */
export async function collectRows(chunks: AsyncIterable<readonly ViewRow[]>): Promise<ViewRow[]> {
  const rows: ViewRow[] = [];
  // A loop, not push(...chunk): a chunk can be more arguments than a call takes.
  for await (const chunk of chunks) for (const row of chunk) rows.push(row);
  return rows;
}
