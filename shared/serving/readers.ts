import type { AwsClients } from '../aws-clients.js';
import { createBatchReader, type BatchReaderDeps } from '../batch/reader.js';
import type { RuntimeConfig } from '../resources.js';
import { createSpeedReader } from '../speed/reader.js';
import { countingStoreRequests } from './budget.js';

/**
 * The query API's readers from a config and clients: the Lambda handler's wiring, which the local stack, the
 * benches and the tests reuse.
 */
export function readersFor(
  clients: Pick<AwsClients, 'documents' | 's3'>,
  config: RuntimeConfig,
  onRequest?: BatchReaderDeps['onRequest'],
) {
  const { tables } = config.names;
  // Every store request also counts into the request's meter (budget.ts), whoever else watches.
  return {
    speed: createSpeedReader({
      documents: clients.documents,
      tableName: tables.speed,
      clock: Date.now,
      onRequest: countingStoreRequests(onRequest ? () => onRequest({ kind: 'query' }) : undefined),
    }),
    batch: createBatchReader({
      documents: clients.documents,
      s3: clients.s3,
      bucket: config.names.bucket,
      viewsTable: tables.batchViews,
      stateTable: tables.batchState,
      onRequest: countingStoreRequests(onRequest),
    }),
  };
}
