import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, FirehoseTransformationEvent, FirehoseTransformationResult } from 'aws-lambda';
import { runAs } from '../../shared/call-ledger.js';
import { transformRecords } from '../../shared/batch/transform.js';
import { configFromEnvironment } from '../../shared/resources.js';

/** Firehose transformation Lambda: validates records and returns their dt/hour partition keys. */

const logger = new Logger({ serviceName: 'ingest' });
const metrics = new Metrics({ namespace: 'PageViews', serviceName: 'ingest' });
const { defaultSite } = configFromEnvironment().settings;

export const handler = async (
  event: FirehoseTransformationEvent,
  context: Context,
): Promise<FirehoseTransformationResult> => {
  logger.addContext(context);
  const records = runAs('ingest', () => transformRecords(event.records, defaultSite));
  let failed = 0;
  for (const record of records) {
    if (!record.rejection) continue;
    failed += 1;
    logger.warn('record rejected', { recordId: record.recordId, ...record.rejection });
  }
  metrics.addMetric('FirehoseRecordsRejected', MetricUnit.Count, failed);
  metrics.addMetric('FirehoseRecordsAccepted', MetricUnit.Count, records.length - failed);
  metrics.publishStoredMetrics();
  // The row and the rejection are ours, not part of Firehose's response shape.
  return { records: records.map(({ rejection: _rejection, row: _row, ...record }) => record) };
};
