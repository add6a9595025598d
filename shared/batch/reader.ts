import { readSiteSpans } from './sites.js';
import type { S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  EMPTY_BREAKDOWN,
  type BatchViewReader,
  type BreakdownSource,
  type CountRow,
  type HorizonState,
} from '../counts.js';
import type { Dimension } from '../event.js';
import { DAY_MS, dayBucket, HOUR_MS } from '../time.js';
import { type ViewStoreDeps } from '../views/format.js';
import { DayReader, ObjectCache, readManifests } from '../views/reader.js';
import { empty as emptySketch, unionAll } from '../sketch/index.js';
import { readHorizonState } from './state.js';
import { readViews } from './views.js';

export interface BatchReaderDeps {
  readonly documents: DynamoDBDocumentClient;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly viewsTable: string;
  readonly stateTable: string;
  /** Called once per request, for request accounting. */
  readonly onRequest?: ViewStoreDeps['onRequest'];
  /** Parsed view objects, shared across queries (they never change). */
  readonly cache?: ObjectCache;
}

export class BatchQueryError extends Error {
  override readonly name = 'BatchQueryError';
}

/** Reads the published horizon, the totals before it (DynamoDB) and breakdowns (the view store). */
export function createBatchReader(deps: BatchReaderDeps): BatchViewReader {
  const store: ViewStoreDeps = {
    s3: deps.s3,
    bucket: deps.bucket,
    documents: deps.documents,
    tableName: deps.viewsTable,
    ...(deps.onRequest ? { onRequest: deps.onRequest } : {}),
  };
  const days = new DayReader(store, deps.cache ?? new ObjectCache());
  const countRequest = () => deps.onRequest?.({ kind: 'query' });
  const checkRange = (toMs: number, horizon: HorizonState) => {
    if (toMs > horizon.horizonMs) {
      throw new BatchQueryError(`batch views end at the horizon ${horizon.horizonMs}; asked up to ${toMs}`);
    }
  };
  return {
    async readHorizon() {
      countRequest();
      return readHorizonState({ documents: deps.documents, tableName: deps.stateTable });
    },

    async readTotals(query, horizon) {
      checkRange(query.toMs, horizon);
      return readViews(
        { documents: deps.documents, tableName: deps.viewsTable, onRequest: countRequest },
        { ...query, dimension: 'total' },
      );
    },

    async siteSpans() {
      const spans = await readSiteSpans({
        documents: deps.documents,
        tableName: deps.viewsTable,
        onRequest: countRequest,
      });
      return [...spans.values()];
    },

    async breakdown(site: string, dimension: Dimension, fromMs: number, toMs: number, horizon: HorizonState) {
      checkRange(toMs, horizon);
      if (toMs <= fromMs) return EMPTY_BREAKDOWN;
      const manifests = await readManifests(
        store,
        site,
        dimension,
        dayBucket(fromMs),
        dayBucket(toMs - 1) + DAY_MS,
      );
      const inRange = [...manifests.values()].sort((a, b) => a.dayMs - b.dayMs);
      return {
        blocks: inRange.map((manifest) => ({ read: (depth: number) => days.ranked(manifest, depth) })),
        async rows(values) {
          const rows: CountRow[] = [];
          await Promise.all(
            inRange.map(async (manifest) => {
              const found = await days.lookup(manifest, values);
              for (const hits of found.values()) {
                for (const hit of hits) {
                  if (hit.hourMs >= fromMs && hit.hourMs + HOUR_MS <= toMs)
                    rows.push({
                      bucketMs: hit.hourMs,
                      value: hit.value,
                      count: hit.views,
                      errors: hit.errors,
                    });
                }
              }
            }),
          );
          return rows;
        },
        async visitors(values) {
          // Whole days inside the range use each value's day sketch; a day the range cuts, its hours'.
          const parts = await Promise.all(
            inRange.map((manifest) => days.visitorSketches(manifest, values, fromMs, toMs)),
          );
          return new Map(
            values.map((value) => [value, unionAll(parts.map((part) => part.get(value) ?? emptySketch()))]),
          );
        },
      } satisfies BreakdownSource;
    },
  };
}
