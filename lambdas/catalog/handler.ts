import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { EventBridgeEvent } from 'aws-lambda';
import { awsClients, type AwsClients } from '../../shared/aws-clients.js';
import { runAs } from '../../shared/call-ledger.js';
import { markLanded } from '../../shared/batch/catalog.js';
import { configFromEnvironment, PREFIXES, type RuntimeConfig } from '../../shared/resources.js';

/**
 * S3 "Object Created" (EventBridge) → the batch layer's catalog of dirty hours. Thin adapter over
 * shared/batch/catalog.ts. EventBridge delivers at least once; marking an hour twice is harmless. Objects
 * under firehose-errors/processing-failed/ are counted (alarmed), not marked: they are not master data.
 */

export interface ObjectCreatedDetail {
  readonly bucket: { readonly name: string };
  readonly object: { readonly key: string; readonly size?: number; readonly etag?: string };
}

export type ObjectCreatedEvent = EventBridgeEvent<'Object Created', ObjectCreatedDetail>;

export interface CatalogHandlerDeps {
  readonly clients: Pick<AwsClients, 'documents'>;
  readonly config: RuntimeConfig;
  readonly clock?: () => number;
}

export interface CatalogResult {
  readonly hoursMarked: number;
  /** The object holds records Firehose could not process (alarmed; `npm run redrive` puts them back). */
  readonly processingFailed: boolean;
}

export type CatalogHandler = (event: ObjectCreatedEvent) => Promise<CatalogResult>;

export function createCatalogHandler(deps: CatalogHandlerDeps): CatalogHandler {
  const state = { documents: deps.clients.documents, tableName: deps.config.names.tables.batchState };
  return (event) =>
    runAs('catalog', async () => {
      const { key } = event.detail.object;
      if (event.detail.bucket.name !== deps.config.names.bucket)
        return { hoursMarked: 0, processingFailed: false };
      if (key.startsWith(PREFIXES.processingFailed)) return { hoursMarked: 0, processingFailed: true };
      const hoursMarked = await markLanded(state, [key], (deps.clock ?? Date.now)());
      return { hoursMarked, processingFailed: false };
    });
}

/** The EventBridge event S3 sends for a created object (what the local stand-in plays). */
export function objectCreatedEvent(bucket: string, key: string, now = new Date()): ObjectCreatedEvent {
  return {
    version: '0',
    id: crypto.randomUUID(),
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: '000000000000',
    time: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: 'us-east-1',
    resources: [`arn:aws:s3:::${bucket}`],
    detail: { bucket: { name: bucket }, object: { key } },
  };
}

const logger = new Logger({ serviceName: 'catalog' });
const metrics = new Metrics({ namespace: 'PageViews', serviceName: 'catalog' });
let handle: CatalogHandler | undefined;

export const handler = async (event: ObjectCreatedEvent): Promise<CatalogResult> => {
  handle ??= createCatalogHandler({ clients: awsClients(), config: configFromEnvironment() });
  const result = await handle(event);
  if (result.processingFailed) {
    // Alarmed (ProcessingFailedObjects): the records are out of the master dataset until redriven.
    logger.error('Firehose set records aside as processing-failed; run npm run redrive', {
      key: event.detail.object.key,
    });
    metrics.addMetric('ProcessingFailedObjects', MetricUnit.Count, 1);
    metrics.publishStoredMetrics();
  } else if (result.hoursMarked === 0)
    logger.warn('object is not a raw partition object', { key: event.detail.object.key });
  return result;
};
