import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { KinesisStreamRecord } from 'aws-lambda';
import { createBatchHandler } from '../../../lambdas/batch/handler.js';
import { createCatalogHandler, objectCreatedEvent } from '../../../lambdas/catalog/handler.js';
import { transformRecord } from '../../../shared/batch/transform.js';
import { createDuckDbEngine } from '../../../local/athena-duckdb.js';
import type { AwsClients } from '../../../shared/aws-clients.js';
import type { MasterRecord } from '../../../shared/event.js';
import { recordShardId } from '../../../shared/speed/aggregate.js';
import { PREFIXES, type RuntimeConfig } from '../../../shared/resources.js';
import type { RunSummary } from '../../../shared/batch/run.js';
import { hourPartitionPath, MINUTE_MS } from '../../../shared/time.js';
import { parquetBytes } from '../../../local/parquet.js';

/**
 * The master dataset of some stream records, as Firehose with the transform Lambda lands it (one object per
 * event-time hour, with S3's Object Created notification to the catalog), then one batch run at a time that
 * publishes `horizonMs`: what the merge property tests build before they ask the API.
 */
export async function landAndRunBatch(
  clients: AwsClients,
  config: RuntimeConfig,
  records: readonly KinesisStreamRecord[],
  arrivalMs: number,
  horizonMs: number,
): Promise<RunSummary> {
  const partitions = new Map<string, MasterRecord[]>();
  for (const record of records) {
    const result = transformRecord({
      recordId: record.kinesis.sequenceNumber,
      approximateArrivalTimestamp: arrivalMs,
      data: record.kinesis.data,
      kinesisRecordMetadata: {
        shardId: recordShardId(record),
        partitionKey: 'p',
        approximateArrivalTimestamp: arrivalMs,
        sequenceNumber: record.kinesis.sequenceNumber,
        subsequenceNumber: '',
      },
    });
    if (!result.row) continue;
    const key = hourPartitionPath(result.row.created);
    partitions.set(key, [...(partitions.get(key) ?? []), result.row]);
  }
  const { bucket } = config.names;
  const catalog = createCatalogHandler({ clients, config });
  for (const [partition, events] of partitions) {
    const key = `${PREFIXES.raw}${partition}/part.parquet`;
    await clients.s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: await parquetBytes(events) }),
    );
    // What S3 sends EventBridge for every object created.
    await catalog(objectCreatedEvent(bucket, key));
  }
  const engine = createDuckDbEngine({
    s3: clients.s3,
    bucket,
    cacheDir: mkdtempSync(join(tmpdir(), 'prop-')),
  });
  const clock = () => horizonMs + config.settings.firehoseBufferSeconds * 1000 + 5 * MINUTE_MS + 1;
  return createBatchHandler({ clients, config, engine, clock })();
}
