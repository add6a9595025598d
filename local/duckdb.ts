import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';

/** One in-memory DuckDB per process for local work (Parquet writing, the local Athena port). */
let instance: Promise<DuckDBInstance> | undefined;

/** A new connection with the session settings Athena has: UTC. */
export async function duckdbConnection(): Promise<DuckDBConnection> {
  instance ??= DuckDBInstance.create(':memory:');
  const connection = await (await instance).connect();
  // date_trunc on TIMESTAMPTZ follows the session zone; Athena sessions are UTC.
  await connection.run("SET TimeZone = 'UTC'");
  return connection;
}

/** Quotes a string literal for DuckDB SQL (paths, names): DuckDB's COPY TO takes no parameters. */
export const sqlString = (value: string): string => `'${value.replace(/'/g, "''")}'`;
