import { TrinoSQL } from 'dt-sql-parser';
import { describe, expect, it } from 'vitest';
import { loadSql, SQL_NAMES } from '../../shared/sql/index.js';

/**
 * Athena engine v3 parses SQL with Trino's grammar; DuckDB, which runs the same text locally, is more lenient.
 * dt-sql-parser's TrinoSQL is a parser generated from Trino's grammar. (Every statement the engine actually sends
 * during the integration tests is checked the same way, from the call ledger: test/ledger/.)
 */
describe('the batch SQL as Athena reads it', () => {
  // The generated parser takes over a second for the views' SQL on an idle machine, several on a loaded one.
  it.each(SQL_NAMES)('%s parses as Trino SQL', { timeout: 30_000 }, (name) => {
    expect(new TrinoSQL().validate(loadSql(name))).toEqual([]);
  });

  it('keeps placeholders out of comments: a `?` there reads as a parameter to a careless eye, and counts', () => {
    for (const name of SQL_NAMES) {
      const comments = loadSql(name).match(/--.*$/gm) ?? [];
      expect(comments.filter((comment) => comment.includes('?'))).toEqual([]);
    }
  });

  it('refuses what Trino does not parse', () => {
    expect(new TrinoSQL().validate('SELECT a FROM t WHERE dt = ? AND')).not.toEqual([]);
  });
});
