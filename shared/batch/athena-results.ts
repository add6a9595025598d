import { decodeSqlSketch } from '../sketch/index.js';
import type { ViewRow } from '../sql/index.js';

/**
 * Athena's result file, read as a stream. Athena saves the result of every DML query as CSV at the query's
 * output location (`<QueryExecutionId>.csv`; Athena user guide, "Working with query results, recent queries,
 * and output files"): a header line, then one line per row, every value in double quotes (a quote inside
 * doubled), and NULL as an empty field without quotes. One GET streams it whole, where GetQueryResults would
 * take one sequential call per 1,000 rows (about 2,000 calls for an hour of a million urls).
 */

/** A CSV field: its text, or null for an unquoted empty field (Athena's NULL). */
export type CsvField = string | null;

/** Splits CSV text arriving in pieces into records, `chunkRows` at a time; quotes may span pieces and lines. */
export async function* csvRecords(
  pieces: AsyncIterable<Uint8Array | string>,
  chunkRows = 1000,
): AsyncGenerator<CsvField[][]> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const records: CsvField[][] = [];
  let record: CsvField[] = [];
  let field = '';
  let quoted = false;
  let inQuotes = false;
  // A quote seen inside quotes: the end of the field, or the first of a doubled quote.
  let quotePending = false;
  const endField = () => {
    record.push(quoted || field !== '' ? field : null);
    field = '';
    quoted = false;
  };
  const endRecord = () => {
    endField();
    records.push(record);
    record = [];
  };
  const consume = (text: string) => {
    let start = 0;
    for (let i = 0; i < text.length; i += 1) {
      const c = text.charCodeAt(i);
      if (quotePending) {
        quotePending = false;
        if (c === 34) {
          field += '"';
          start = i + 1;
          continue;
        }
        inQuotes = false;
      }
      if (inQuotes) {
        if (c === 34) {
          field += text.slice(start, i);
          quotePending = true;
          start = i + 1;
        }
        continue;
      }
      if (c === 34) {
        quoted = true;
        inQuotes = true;
        start = i + 1;
      } else if (c === 44) {
        field += text.slice(start, i);
        endField();
        start = i + 1;
      } else if (c === 10 || c === 13) {
        field += text.slice(start, i);
        // \r\n ends one record; an empty line ends none.
        if (record.length > 0 || field !== '' || quoted) endRecord();
        start = i + 1;
      }
    }
    field += text.slice(start);
  };
  for await (const piece of pieces) {
    consume(typeof piece === 'string' ? piece : decoder.decode(piece, { stream: true }));
    // A piece may hold more records than a chunk: hand them on `chunkRows` at a time.
    while (records.length >= chunkRows) yield records.splice(0, chunkRows);
  }
  consume(decoder.decode());
  if (quotePending) inQuotes = false;
  if (inQuotes) throw new Error('Athena result CSV ends inside a quoted field');
  if (record.length > 0 || field !== '' || quoted) endRecord();
  if (records.length > 0) yield records;
}

/** The view SQL's columns, in the order it selects them (shared/sql/hourly_views.sql). */
const COLUMNS = [
  'site',
  'bucket_ms',
  'dimension',
  'value',
  'views',
  'errors',
  'sketch_form',
  'sketch',
] as const;

export class AthenaResultError extends Error {
  override readonly name = 'AthenaResultError';
}

/** The view rows of a batch-view query's result CSV, in chunks. */
export async function* viewRowsFromCsv(
  pieces: AsyncIterable<Uint8Array | string>,
  chunkRows = 1000,
): AsyncGenerator<ViewRow[]> {
  let header = true;
  for await (const records of csvRecords(pieces, chunkRows)) {
    const rows: ViewRow[] = [];
    for (const fields of records) {
      if (header) {
        header = false;
        if (fields.join(',') !== COLUMNS.join(','))
          throw new AthenaResultError(`unexpected result columns: ${fields.join(',')}`);
        continue;
      }
      const [site, bucket, dimension, value, views, errors, form, sketch] = fields;
      rows.push({
        site: site ?? '',
        bucketMs: Number(bucket),
        dimension: dimension ?? '',
        value: value ?? '',
        views: Number(views),
        errors: Number(errors),
        // Arrays print as "[1, 2, 3]"; a row without visitor hashes has NULL sketch columns.
        ...(form && sketch ? { visitors: decodeSqlSketch(form, sketch) } : {}),
      });
    }
    if (rows.length > 0) yield rows;
  }
}
