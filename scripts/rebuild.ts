import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createBatchHandler } from '../lambdas/batch/handler.js';
import { createAwsClients } from '../shared/aws-clients.js';
import { HOUR_MS, toIso } from '../shared/time.js';
import { createDuckDbEngine } from '../local/athena-duckdb.js';
import { LOCAL_SETTINGS } from '../local/stack.js';
import { clientOptionsFor, LOCAL_DIR, requireLocalStack } from '../local/stack-file.js';
import { parseInstant, runCli, UsageError } from '../tools/cli.js';

/**
 * `npm run rebuild -- --from 2026-11-20T00:00:00Z --to 2026-11-21T00:00:00Z`: recomputes the batch views of
 * an hour range from the master dataset on the running local stack (the horizon stays where it is).
 * On AWS, invoke the batch function with the same range: see docs/batch-layer.md, "Rebuilds".
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { from: { type: 'string' }, to: { type: 'string' } } });
  if (!values.from || !values.to)
    throw new UsageError('usage: npm run rebuild -- --from <ISO or epoch ms> --to <ISO or epoch ms>');
  const fromMs = parseInstant(values.from, '--from');
  const toMs = parseInstant(values.to, '--to');
  if (fromMs % HOUR_MS !== 0 || toMs % HOUR_MS !== 0)
    throw new UsageError('--from and --to must be whole hours (UTC)');
  if (fromMs >= toMs) throw new UsageError('--from must be before --to');
  const stack = requireLocalStack(
    ' (on AWS, invoke the batch function with {"from", "to"}: README, "Operations")',
  );
  const clients = createAwsClients(clientOptionsFor(stack));
  try {
    const engine = createDuckDbEngine({
      s3: clients.s3,
      bucket: stack.names.bucket,
      cacheDir: join(LOCAL_DIR, 'data', 'parquet-cache'),
    });
    const rebuild = createBatchHandler({
      clients,
      config: { names: stack.names, settings: LOCAL_SETTINGS },
      engine,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stderr.write(`rebuilding batch views for [${toIso(fromMs)}, ${toIso(toMs)})…\n`);
    const summary = await rebuild({ from: fromMs, to: toMs });
    process.stdout.write(
      `${summary.outcome}: ${summary.detail} (${engine.stats.objectsScanned} Parquet objects, ${engine.stats.bytesScanned} bytes read)\n`,
    );
  } finally {
    clients.destroy();
  }
}

runCli(main);
