import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { awsClients, type AwsClients } from '../../shared/aws-clients.js';
import { runAs } from '../../shared/call-ledger.js';
import { configFromEnvironment, type RuntimeConfig } from '../../shared/resources.js';
import { GenerationCache, type CellWriteLimits } from '../../shared/speed/cell-writer.js';
import { processSpeedBatch, type SpeedObserver } from '../../shared/speed/speed-layer.js';

/** Kinesis → speed table. Thin adapter: the work is in speed-layer.ts. */

export interface SpeedHandlerDeps {
  readonly clients: Pick<AwsClients, 'documents' | 's3'>;
  readonly config: RuntimeConfig;
  readonly clock?: () => number;
  readonly observer?: SpeedObserver;
  readonly retryBaseMs?: number;
  /** Values per update and generation size. @default DEFAULT_CELL_WRITE_LIMITS */
  readonly limits?: Partial<CellWriteLimits>;
}

export type SpeedHandler = (
  event: KinesisStreamEvent,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
) => Promise<KinesisStreamBatchResponse>;

export function createSpeedHandler(deps: SpeedHandlerDeps): SpeedHandler {
  // Lives as long as the handler: across the warm invocations of a Lambda instance.
  const cache = new GenerationCache();
  return (event, context) =>
    runAs('speed', () =>
      processSpeedBatch(event.Records, {
        documents: deps.clients.documents,
        s3: deps.clients.s3,
        tableName: deps.config.names.tables.speed,
        bucket: deps.config.names.bucket,
        retentionHours: deps.config.settings.speedRetentionHours,
        defaultSite: deps.config.settings.defaultSite,
        clock: deps.clock ?? Date.now,
        cache,
        ...(deps.limits ? { limits: deps.limits } : {}),
        ...(deps.observer ? { observer: deps.observer } : {}),
        ...(deps.retryBaseMs !== undefined ? { retryBaseMs: deps.retryBaseMs } : {}),
        ...(context ? { remainingTimeMs: () => context.getRemainingTimeInMillis() } : {}),
      }),
    );
}

const logger = new Logger({ serviceName: 'speed' });
const metrics = new Metrics({ namespace: 'PageViews', serviceName: 'speed' });

const lambdaObserver: SpeedObserver = {
  count: (metric, value) => metrics.addMetric(metric, MetricUnit.Count, value),
  rejected: (record) =>
    logger.warn('record rejected', {
      violation: record.rejection.violation,
      reason: record.rejection.reason,
      shardId: record.shardId,
      sequenceNumber: record.sequenceNumber,
    }),
  error: (message, error) => logger.error(message, error as Error),
};

let handle: SpeedHandler | undefined;

export const handler = async (
  event: KinesisStreamEvent,
  context: Context,
): Promise<KinesisStreamBatchResponse> => {
  handle ??= createSpeedHandler({
    clients: awsClients(),
    config: configFromEnvironment(),
    observer: lambdaObserver,
  });
  logger.addContext(context);
  try {
    const response = await handle(event, context);
    if (response.batchItemFailures.length > 0) {
      logger.warn('batch partially applied; the event source mapping resumes at the reported record', {
        resumeAt: response.batchItemFailures[0]!.itemIdentifier,
        records: event.Records.length,
      });
    }
    return response;
  } finally {
    metrics.publishStoredMetrics();
  }
};
