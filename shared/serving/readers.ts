import type { AwsClients } from '../aws-clients.js';
import { createBatchReader, type BatchReaderDeps } from '../batch/reader.js';
import type { RuntimeConfig } from '../resources.js';
import { createSpeedReader } from '../speed/reader.js';
import { countingStoreRequests } from './budget.js';
import { BlockCache, tallyCube, tallyHeads } from '../batch/cube.js';
import { tallyRollups } from '../speed/rollup.js';
import type { FilteredReaders } from './filtered.js';

/**
 * The query API's readers from a config and clients: the Lambda handler's wiring, which the local stack, the
 * benches and the tests reuse.
 */
export function readersFor(
  clients: Pick<AwsClients, 'documents' | 's3'>,
  config: RuntimeConfig,
  onRequest?: BatchReaderDeps['onRequest'],
  /** Decoded cube hours kept across requests (a warm function's); none: every request reads them. */
  cache: BlockCache | undefined = new BlockCache(),
) {
  const { tables } = config.names;
  const speedRequest = countingStoreRequests(onRequest ? () => onRequest({ kind: 'query' }) : undefined);
  const batchRequest = countingStoreRequests(onRequest);
  const cubeDeps = {
    documents: clients.documents,
    s3: clients.s3,
    bucket: config.names.bucket,
    tableName: tables.batchViews,
    onRequest: batchRequest,
    ...(cache ? { cache } : {}),
  };
  const filtered: FilteredReaders = {
    speed: (site, fromMs, toMs, tally) =>
      tallyRollups(
        { documents: clients.documents, tableName: tables.speed, clock: Date.now, onRequest: speedRequest },
        fromMs,
        toMs,
        tally,
        site,
      ),
    batch: async (site, fromMs, toMs, tally) => {
      await tallyCube(cubeDeps, fromMs, toMs, tally, site);
    },
    heads: (site, fromMs, toMs, tally, serve) => tallyHeads(cubeDeps, fromMs, toMs, tally, site, serve),
  };
  // Every store request also counts into the request's meter (budget.ts), whoever else watches.
  return {
    speed: createSpeedReader({
      documents: clients.documents,
      tableName: tables.speed,
      clock: Date.now,
      onRequest: speedRequest,
    }),
    batch: createBatchReader({
      documents: clients.documents,
      s3: clients.s3,
      bucket: config.names.bucket,
      viewsTable: tables.batchViews,
      stateTable: tables.batchState,
      onRequest: batchRequest,
    }),
    filtered,
  };
}
