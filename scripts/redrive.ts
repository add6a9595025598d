import { parseArgs } from 'node:util';
import { PROCESSING_FAILED_PREFIX, redriveFailed } from '../shared/batch/redrive.js';
import { createAwsClients } from '../shared/aws-clients.js';
import { parquetBytes } from '../local/parquet.js';
import { clientOptionsFor, requireLocalStack } from '../local/stack-file.js';
import { runCli, UsageError } from '../tools/cli.js';

/**
 * `npm run redrive [-- --bucket <BucketName>] [--prefix firehose-errors/processing-failed/2026/11/25/] [--json]`:
 * puts the records Firehose could not process back through the transform into raw/ (shared/batch/redrive.ts).
 * Without --bucket it works on the running local stack; with it, on that bucket with the AWS credentials in
 * the environment (the caller needs s3:ListBucket, s3:GetObject and s3:PutObject there). Running it again
 * writes nothing: every record it put back is already there.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      bucket: { type: 'string' },
      prefix: { type: 'string', default: PROCESSING_FAILED_PREFIX },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.prefix.startsWith(PROCESSING_FAILED_PREFIX))
    throw new UsageError(`--prefix must lie under ${PROCESSING_FAILED_PREFIX}`);
  const local = values.bucket
    ? undefined
    : requireLocalStack(' (or pass --bucket <BucketName> for a deployed stack)');
  const clients = createAwsClients(local ? clientOptionsFor(local) : {});
  try {
    const summary = await redriveFailed(
      {
        s3: clients.s3,
        bucket: values.bucket ?? local!.names.bucket,
        parquet: parquetBytes,
        log: (line) => process.stderr.write(`${line}\n`),
      },
      values.prefix,
    );
    if (values.json) {
      process.stdout.write(JSON.stringify(summary) + '\n');
      return;
    }
    const refused = Object.entries(summary.refused).map(([violation, n]) => `${n} ${violation}`);
    process.stdout.write(
      `redrive: ${summary.records} records in ${summary.sources} error objects; ${summary.redriven} back in raw/ ` +
        `(${summary.objectsWritten} objects written, ${summary.objectsPresent} already there)` +
        (refused.length ? `; refused again (invalid, kept): ${refused.join(', ')}` : '') +
        '\nThe catalog marks their hours; the next batch run counts them.\n',
    );
  } finally {
    clients.destroy();
  }
}

runCli(main);
