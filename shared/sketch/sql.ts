import { HASH_BITS, PRECISION, SPARSE_LIMIT, VALUE_BITS, VALUE_SHIFT } from './hll.js';

/**
 * The visitor sketches in SQL, one text for Athena (Trino) and DuckDB: only bit arithmetic on the
 * `userhash bigint` column, which the JS computes once (userHash), so no md5/sha dialects are involved.
 * DuckDB gets Trino's `bitwise_and` and `bitwise_right_shift` as macros (local/athena-duckdb.ts).
 */

/** The register index of a hash column, as registerOf: its top PRECISION bits. */
export const sqlRegisterIndex = (hash: string): string =>
  `bitwise_right_shift(${hash}, ${HASH_BITS - PRECISION})`;

/**
 * Rho of a hash column, as registerOf: leading zeros of the 32-bit w, plus one. SQL has no count of
 * leading zeros, so it uses floor(log2(2w + 1)), the bit length of w (0 for w = 0): 2w + 1 is odd, at least
 * a factor 1 + 2^-33 away from any power of two but 1, far more than the last-place error of Trino's
 * log2 (ln(x) / ln(2)) or DuckDB's, and log2(1) = 0 exactly. Integer until the cast: 2w + 1 < 2^33.
 */
export const sqlRegisterRho = (hash: string): string =>
  `${VALUE_BITS + 1} - CAST(floor(log2(CAST(2 * bitwise_and(bitwise_right_shift(${hash}, ${VALUE_SHIFT}), ` +
  `${2 ** VALUE_BITS - 1}) + 1 AS double))) AS bigint)`;

export interface VisitorSketchSqlOptions {
  /** The relation to read: a table or view name, or `(SELECT …) AS alias`. */
  readonly input: string;
  /** Its grouping columns; one sketch per distinct combination (NULL is a value, as in GROUP BY). */
  readonly keys: readonly string[];
  /** Its hash column. @default 'userhash' */
  readonly hash?: string;
}

/**
 * A query with one row per group: the keys, `sketch_form` and `sketch`, an array of bigint:
 * - 'sparse' when the group has at most SPARSE_LIMIT distinct hashes: those hashes, ascending;
 * - 'dense' otherwise: `index * 64 + rho` for every non-empty register (max rho per index), ascending.
 * decodeSqlSketch turns a row into the sketch fromHashes gives for the same hashes. Rows with a NULL hash
 * (written before the column existed) are left out. Usable as a subquery or a CTE body.
 */
export function visitorSketchSql(options: VisitorSketchSqlOptions): string {
  const hash = options.hash ?? 'userhash';
  if (options.keys.length === 0) throw new Error('visitorSketchSql needs at least one key column');
  const keys = options.keys.join(', ');
  return `WITH sketch_hashes AS (
  SELECT ${keys}, ${hash}, count(*) OVER (PARTITION BY ${keys}) AS distinct_hashes
  FROM (SELECT DISTINCT ${keys}, ${hash} FROM ${options.input} WHERE ${hash} IS NOT NULL) AS sketch_distinct
),
sketch_registers AS (
  SELECT ${keys}, register_index, max(rho) AS rho
  FROM (
    SELECT ${keys}, ${sqlRegisterIndex(hash)} AS register_index, ${sqlRegisterRho(hash)} AS rho
    FROM sketch_hashes
    WHERE distinct_hashes > ${SPARSE_LIMIT}
  ) AS sketch_rho
  GROUP BY ${keys}, register_index
)
SELECT ${keys}, 'sparse' AS sketch_form, array_sort(array_agg(${hash})) AS sketch
FROM sketch_hashes
WHERE distinct_hashes <= ${SPARSE_LIMIT}
GROUP BY ${keys}
UNION ALL
SELECT ${keys}, 'dense' AS sketch_form, array_sort(array_agg(register_index * 64 + rho)) AS sketch
FROM sketch_registers
GROUP BY ${keys}`;
}
