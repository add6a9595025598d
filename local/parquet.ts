import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COLUMNS, type MasterRecord, type PageView } from '../shared/event.js';
import { userHash } from '../shared/sketch/index.js';
import { sourceOf } from '../shared/sources.js';
import { duckdbConnection, sqlString } from './duckdb.js';

/** Writes master-dataset rows as Parquet with its schema, as Firehose's Parquet serializer does. */

const DUCKDB_TYPES = { bigint: 'BIGINT', int: 'INTEGER', string: 'VARCHAR' } as const;

export async function writeParquetFile(events: readonly MasterRecord[], path: string): Promise<void> {
  const connection = await duckdbConnection();
  const table = `pv_${randomUUID().replace(/-/g, '')}`;
  try {
    await connection.run(
      `CREATE TEMP TABLE ${table} (${COLUMNS.map((c) => `${c.name} ${DUCKDB_TYPES[c.type]}`).join(', ')})`,
    );
    const appender = await connection.createAppender(table);
    for (const event of events) {
      for (const column of COLUMNS) {
        const value = event[column.field];
        if (value === undefined) appender.appendNull();
        else if (column.type === 'bigint') appender.appendBigInt(BigInt(value));
        else if (column.type === 'int') appender.appendInteger(value as number);
        else appender.appendVarchar(value as string);
      }
      appender.endRow();
    }
    appender.closeSync();
    // Firehose writes Snappy-compressed Parquet.
    await connection.run(`COPY ${table} TO ${sqlString(path)} (FORMAT parquet, COMPRESSION snappy)`);
  } finally {
    await connection.run(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    connection.closeSync();
  }
}

export async function parquetBytes(events: readonly MasterRecord[]): Promise<Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), 'parquet-'));
  try {
    const path = join(dir, 'part.parquet');
    await writeParquetFile(events, path);
    return readFileSync(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Master-dataset rows for events written straight to S3 (tests, benches): each gets a record identity of
 * its own, as if each had been one Kinesis record of `shardId`, in order.
 */
export function asRecords(events: readonly PageView[], shardId = 'shardId-000000000000'): MasterRecord[] {
  return events.map((event, i) => ({
    ...event,
    source: sourceOf(event),
    userHash: userHash(event.userId),
    shardId,
    sequenceNumber: String(1_000_000 + i),
  }));
}
