import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { BatchViewReader } from '../counts.js';
import { readHorizonState } from './state.js';
import { readViews } from './views.js';

export interface BatchReaderDeps {
  readonly documents: DynamoDBDocumentClient;
  readonly viewsTable: string;
  readonly stateTable: string;
  readonly onRequest?: () => void;
}

export class BatchQueryError extends Error {
  override readonly name = 'BatchQueryError';
}

/** Reads the published horizon and the batch views before it. */
export function createBatchReader(deps: BatchReaderDeps): BatchViewReader {
  const views = {
    documents: deps.documents,
    tableName: deps.viewsTable,
    ...(deps.onRequest ? { onRequest: deps.onRequest } : {}),
  };
  return {
    async readHorizon() {
      deps.onRequest?.();
      return readHorizonState({ documents: deps.documents, tableName: deps.stateTable });
    },
    async readCounts(query, horizon) {
      if (query.toMs > horizon.horizonMs) {
        throw new BatchQueryError(
          `batch views end at the horizon ${horizon.horizonMs}; asked up to ${query.toMs}`,
        );
      }
      return readViews(views, query);
    },
  };
}
