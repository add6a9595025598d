import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { COLUMNS } from '../shared/event.js';
import { decodeSqlSketch } from '../shared/sketch/index.js';
import { PREFIXES } from '../shared/resources.js';
import { collectRows, loadSql, type SqlEngine, type SqlName, type ViewRow } from '../shared/sql/index.js';
import { duckdbConnection, sqlString } from './duckdb.js';

/**
 * The local Athena: DuckDB over the raw Parquet objects in S3. DuckDB here has no httpfs, so the engine
 * fetches the partitions a query may touch with the S3 client (cached by ETag) and exposes them as the
 * `raw_events` table with string partition columns dt and hour, as the Glue table declares them.
 */

/** Trino functions the batch SQL uses that DuckDB lacks, as macros with Trino's meaning. */
export const TRINO_COMPAT_MACROS: readonly string[] = [
  // Cast before multiplying: an INTEGER argument times 1e6 would overflow.
  'CREATE OR REPLACE TEMP MACRO from_unixtime(seconds) AS make_timestamp(CAST(CAST(seconds AS DOUBLE) * 1000000 AS BIGINT))',
  'CREATE OR REPLACE TEMP MACRO to_unixtime(ts) AS epoch(ts)',
  // The visitor sketches' bit arithmetic (shared/sketch/sql.ts); on bigint hashes ≥ 0 both are exact.
  'CREATE OR REPLACE TEMP MACRO bitwise_and(x, y) AS x & y',
  'CREATE OR REPLACE TEMP MACRO bitwise_right_shift(x, shift) AS x >> shift',
];

const DUCKDB_TYPES = { bigint: 'BIGINT', int: 'INTEGER', string: 'VARCHAR' } as const;

export interface DuckDbEngineOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  /** Where fetched Parquet objects are cached, keyed by ETag. */
  readonly cacheDir: string;
}

export interface DuckDbEngine extends SqlEngine {
  /** Bytes of Parquet the queries read, and every SQL text executed (for the byte-for-byte check). */
  readonly stats: { bytesScanned: number; objectsScanned: number; queries: number };
  readonly executed: string[];
}

/**
 * Runs a batch-view SQL file over local Parquet files laid out as `…/dt=…/hour=…/…` (hive partitioning),
 * with the Trino compatibility macros, and returns its rows.
 */
export function runViewSql(
  name: SqlName,
  parameters: readonly string[],
  files: readonly string[],
): Promise<ViewRow[]> {
  return collectRows(streamViewSql(name, parameters, files));
}

const viewRow = (row: Record<string, unknown>): ViewRow => ({
  site: String(row.site),
  bucketMs: Number(row.bucket_ms),
  dimension: String(row.dimension),
  value: String(row.value),
  views: Number(row.views),
  errors: Number(row.errors),
  ...(row.sketch_form === null
    ? {}
    : {
        visitors: decodeSqlSketch(
          String(row.sketch_form),
          (row.sketch as { items: readonly (number | bigint)[] }).items,
        ),
      }),
});

/** The rows of a batch-view SQL file over local Parquet files, streamed in DuckDB's chunks (2,048 rows). */
export async function* streamViewSql(
  name: SqlName,
  parameters: readonly string[],
  files: readonly string[],
): AsyncGenerator<ViewRow[]> {
  const connection = await duckdbConnection();
  try {
    for (const macro of TRINO_COMPAT_MACROS) await connection.run(macro);
    if (files.length > 0) {
      const source =
        `read_parquet([${files.map(sqlString).join(', ')}], ` +
        `hive_partitioning = true, hive_types = {'dt': VARCHAR, 'hour': VARCHAR}, union_by_name = true)`;
      // The table's columns are the Glue table's, not the files': a column that no object has yet (objects
      // written before it existed) reads as NULL, as Athena reads it.
      const present = new Set(
        (await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`))
          .getRowObjects()
          .map((row) => String(row.column_name)),
      );
      const columns = COLUMNS.map((c) =>
        present.has(c.name) ? c.name : `CAST(NULL AS ${DUCKDB_TYPES[c.type]}) AS ${c.name}`,
      );
      await connection.run(
        `CREATE OR REPLACE TEMP VIEW raw_events AS SELECT ${columns.join(', ')}, dt, hour FROM ${source}`,
      );
    } else {
      const columns = COLUMNS.map((c) => `${c.name} ${DUCKDB_TYPES[c.type]}`).join(', ');
      await connection.run(`CREATE OR REPLACE TEMP TABLE raw_events (${columns}, dt VARCHAR, hour VARCHAR)`);
    }
    const result = await connection.stream(loadSql(name), [...parameters]);
    for await (const chunk of result.yieldRowObjects()) yield chunk.map(viewRow);
  } finally {
    connection.closeSync();
  }
}

export function createDuckDbEngine(options: DuckDbEngineOptions): DuckDbEngine {
  const stats = { bytesScanned: 0, objectsScanned: 0, queries: 0 };
  const executed: string[] = [];

  async function fetchPartition(partition: string): Promise<string[]> {
    const files: string[] = [];
    let token: string | undefined;
    do {
      const page = await options.s3.send(
        new ListObjectsV2Command({
          Bucket: options.bucket,
          Prefix: `${PREFIXES.raw}${partition}/`,
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      for (const object of page.Contents ?? []) {
        const etag = (object.ETag ?? '').replace(/"/g, '');
        const path = join(
          options.cacheDir,
          PREFIXES.raw,
          partition,
          `${etag || object.Key!.replace(/\//g, '_')}.parquet`,
        );
        if (!existsSync(path)) {
          const body = await options.s3.send(
            new GetObjectCommand({ Bucket: options.bucket, Key: object.Key }),
          );
          mkdirSync(dirname(path), { recursive: true });
          writeFileSync(path, await body.Body!.transformToByteArray());
        }
        files.push(path);
        stats.bytesScanned += object.Size ?? 0;
        stats.objectsScanned += 1;
      }
      token = page.NextContinuationToken;
    } while (token);
    return files;
  }

  return {
    stats,
    executed,
    async *query(
      name: SqlName,
      parameters: readonly string[],
      partitions: readonly string[],
    ): AsyncGenerator<ViewRow[]> {
      const files = (await Promise.all(partitions.map(fetchPartition))).flat();
      executed.push(loadSql(name));
      stats.queries += 1;
      yield* streamViewSql(name, parameters, files);
    },
  };
}
