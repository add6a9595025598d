import type { DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRINO_COMPAT_MACROS } from '../../local/athena-duckdb.js';
import { duckdbConnection } from '../../local/duckdb.js';
import {
  decodeSqlSketch,
  encode,
  fromHashes,
  registerOf,
  sqlRegisterIndex,
  sqlRegisterRho,
  SPARSE_LIMIT,
  userHash,
  visitorSketchSql,
} from '../../shared/sketch/index.js';
import { EDGE_HASHES, hashWith } from '../support/sketch.js';
import { loadSql } from '../../shared/sql/index.js';

/**
 * The visitor-sketch SQL on DuckDB with the Trino compatibility macros, the way the local Athena runs the
 * batch SQL: per group it must give exactly the sketch the JS builds from the same hashes.
 */

/** Visits of one group: a site and day (two keys, one of them NULL for the last group), and its users. */
interface Group {
  readonly site: string | null;
  readonly day: number;
  readonly hashes: readonly number[];
}

const users = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, i) => userHash(`${prefix}-${i}`));

const GROUPS: readonly Group[] = [
  { site: 'one', day: 1, hashes: users('one', 1) },
  { site: 'at-limit', day: 1, hashes: users('limit', SPARSE_LIMIT) },
  { site: 'over-limit', day: 1, hashes: users('over', SPARSE_LIMIT + 1) },
  { site: 'edges', day: 1, hashes: [...EDGE_HASHES] },
  { site: 'edges', day: 2, hashes: [...EDGE_HASHES, ...users('edges', 400)] },
  { site: 'few-registers', day: 2, hashes: users('few', 3_000) },
  { site: 'packed', day: 2, hashes: users('packed', 60_000) },
  { site: null, day: 3, hashes: users('null-key', 500) },
];

let connection: DuckDBConnection;

beforeAll(async () => {
  connection = await duckdbConnection();
  for (const macro of TRINO_COMPAT_MACROS) await connection.run(macro);
  await connection.run('CREATE OR REPLACE TABLE sketch_visits (site VARCHAR, day BIGINT, userhash BIGINT)');
  const appender = await connection.createAppender('sketch_visits');
  for (const group of GROUPS) {
    // Every user twice, as repeated page views are, and one view without a hash (an old row).
    for (const hash of [...group.hashes, ...group.hashes, null]) {
      if (group.site === null) appender.appendNull();
      else appender.appendVarchar(group.site);
      appender.appendBigInt(BigInt(group.day));
      if (hash === null) appender.appendNull();
      else appender.appendBigInt(BigInt(hash));
      appender.endRow();
    }
  }
  appender.closeSync();
});

afterAll(() => connection?.closeSync());

describe('visitor sketches in SQL', () => {
  it('compute the register index and rho of the JS for random and edge hashes', async () => {
    const hashes = [...EDGE_HASHES, ...users('registers', 2_000)];
    for (let k = 0; k < 32; k += 1)
      hashes.push(hashWith(k, 2 ** k - 1), hashWith(k, 2 ** k), hashWith(k, 2 ** k + 1));
    const result = await connection.runAndReadAll(
      `SELECT userhash, ${sqlRegisterIndex('userhash')} AS register_index, ${sqlRegisterRho('userhash')} AS rho
       FROM (SELECT unnest([${hashes.join(', ')}]::BIGINT[]) AS userhash)`,
    );
    const rows = result.getRowObjectsJS();
    expect(rows).toHaveLength(hashes.length);
    for (const row of rows) {
      const hash = Number(row.userhash);
      expect({ index: Number(row.register_index), rho: Number(row.rho) }, String(hash)).toEqual(
        registerOf(hash),
      );
    }
  });

  it('give, per group, the sorted hashes up to the sparse limit and the registers above it, as the JS does', async () => {
    const sql = visitorSketchSql({ input: 'sketch_visits', keys: ['site', 'day'] });
    // As a subquery, the way a batch view would embed it.
    const result = await connection.runAndReadAll(
      `SELECT site, day, sketch_form, sketch FROM (${sql}) AS sketches ORDER BY site, day`,
    );
    const rows = result.getRowObjectsJS();
    expect(rows).toHaveLength(GROUPS.length);
    for (const group of GROUPS) {
      const row = rows.find((r) => r.site === group.site && Number(r.day) === group.day)!;
      const expected = fromHashes(group.hashes);
      expect(row.sketch_form, `${group.site}/${group.day}`).toBe(expected.kind);
      const sketch = decodeSqlSketch(String(row.sketch_form), row.sketch as bigint[]);
      expect(encode(sketch), `${group.site}/${group.day}`).toEqual(encode(expected));
    }
  });

  it("decode from the text Athena's GetQueryResults prints for an array", async () => {
    const sql = visitorSketchSql({ input: 'sketch_visits', keys: ['site', 'day'] });
    const result = await connection.runAndReadAll(
      `SELECT site, day, sketch_form, CAST(sketch AS VARCHAR) AS sketch FROM (${sql}) AS sketches`,
    );
    for (const row of result.getRowObjectsJS()) {
      const group = GROUPS.find((g) => g.site === row.site && g.day === Number(row.day))!;
      expect(String(row.sketch)).toMatch(/^\[\d+(, \d+)*\]$/);
      expect(encode(decodeSqlSketch(String(row.sketch_form), String(row.sketch)))).toEqual(
        encode(fromHashes(group.hashes)),
      );
    }
  });
});

describe('the batch view SQL', () => {
  it('embeds the visitor-sketch fragment the library generates, byte for byte', () => {
    const fragment = visitorSketchSql({
      input: 'sketch_input',
      keys: ['site_value', 'bucket_ms', 'dimension', 'value'],
    });
    const ctes = fragment.slice(
      'WITH '.length,
      fragment.indexOf("\nSELECT site_value, bucket_ms, dimension, value, 'sparse'"),
    );
    const text = loadSql('hourly_views');
    expect(text).toContain(ctes);
    for (const line of fragment
      .slice(fragment.indexOf("\nSELECT site_value, bucket_ms, dimension, value, 'sparse'"))
      .trim()
      .split('\n'))
      expect(text).toContain(line);
  });
});
