import { AthenaClient } from '@aws-sdk/client-athena';
import type { VisitorSketch } from '../shared/sketch/index.js';
import type { ViewRow } from '../shared/sql/index.js';

/**
 * Writes view rows as Athena writes a DML query's result (shared/batch/athena-results.ts reads it): a header,
 * every value in double quotes with quotes doubled, NULL as an empty field, arrays printed as "[1, 2, 3]", and
 * the visitor sketch in the SQL's own form (sorted hashes, or `index·64 + rho` register entries). There is no
 * Athena here: the Athena engine's tests and benchmark read what this writes from S3.
 */

const quote = (value: string | number): string => `"${String(value).replace(/"/g, '""')}"`;

function sqlSketch(sketch: VisitorSketch): [string, string] {
  if (sketch.kind === 'sparse') return ['sparse', `[${sketch.hashes.join(', ')}]`];
  const entries: number[] = [];
  sketch.registers.forEach((rho, index) => {
    if (rho > 0) entries.push(index * 64 + rho);
  });
  return ['dense', `[${entries.join(', ')}]`];
}

export const ATHENA_CSV_HEADER =
  '"site","bucket_ms","dimension","value","views","errors","sketch_form","sketch"\n';

/** One result line per row. */
export function athenaCsvLines(rows: readonly ViewRow[]): string {
  let text = '';
  for (const row of rows) {
    const [form, sketch] = row.visitors ? sqlSketch(row.visitors).map(quote) : ['', ''];
    text += `${[row.site, row.bucketMs, row.dimension, row.value, row.views, row.errors].map(quote).join(',')},${form},${sketch}\n`;
  }
  return text;
}

/**
 * A real Athena client whose calls are answered before they leave (there is no Athena here): every query
 * succeeds at once, with its result at `outputLocation`. What the Athena engine does after that (reading the
 * result from S3) runs for real against the S3 emulator.
 */
export function athenaAnswering(outputLocation: string, calls: string[] = []): AthenaClient {
  const athena = new AthenaClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  athena.middlewareStack.add(
    (_next, context) => async () => {
      calls.push(String(context.commandName));
      if (context.commandName === 'StartQueryExecutionCommand')
        return { output: { QueryExecutionId: 'local', $metadata: {} }, response: {} };
      if (context.commandName === 'GetQueryExecutionCommand')
        return {
          output: {
            QueryExecution: {
              Status: { State: 'SUCCEEDED' },
              ResultConfiguration: { OutputLocation: outputLocation },
            },
            $metadata: {},
          },
          response: {},
        };
      throw new Error(`no answer for ${context.commandName}`);
    },
    { step: 'initialize', name: 'answerLocally' },
  );
  return athena;
}
