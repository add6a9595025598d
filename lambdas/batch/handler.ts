import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { createAthenaEngine } from '../../shared/batch/athena-engine.js';
import { cloudWatchDeliveryMetrics } from '../../shared/batch/delivery.js';
import { runBatch, type BatchDeps, type RunSummary } from '../../shared/batch/run.js';
import { awsClients, type AwsClients } from '../../shared/aws-clients.js';
import { runAs } from '../../shared/call-ledger.js';
import {
  ConfigError,
  configFromEnvironment,
  DELIVERY_STREAM_ENV,
  type RuntimeConfig,
} from '../../shared/resources.js';
import type { SqlEngine } from '../../shared/sql/index.js';

/** EventBridge schedule (or a rebuild request) → one batch run. Thin adapter over shared/batch/run.ts. */

export interface RebuildEvent {
  /** ISO-8601 or epoch ms, hour-aligned. */
  readonly from: string | number;
  readonly to: string | number;
}

export type BatchEvent = ScheduledEvent | RebuildEvent | Record<string, never>;

export interface BatchHandlerDeps {
  readonly clients: Pick<AwsClients, 'documents' | 's3'>;
  readonly config: RuntimeConfig;
  readonly engine: SqlEngine;
  readonly clock?: () => number;
  readonly delivery?: BatchDeps['delivery'];
  readonly beforePublish?: BatchDeps['beforePublish'];
  readonly log?: (message: string) => void;
  readonly onViewRequest?: BatchDeps['onViewRequest'];
}

export type BatchHandler = (
  event?: BatchEvent,
  options?: { readonly deadlineMs?: number },
) => Promise<RunSummary>;

/** Time a run keeps in hand to publish what it computed: no new day starts with less left. */
export const PUBLISH_RESERVE_MS = 2 * 60_000;

const instant = (value: string | number): number =>
  typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : Date.parse(value);

export function createBatchHandler(deps: BatchHandlerDeps): BatchHandler {
  return (event, options = {}) => {
    const rebuild =
      event && 'from' in event && 'to' in event
        ? { fromMs: instant(event.from), toMs: instant(event.to) }
        : undefined;
    return runAs('batch', () =>
      runBatch(
        {
          engine: deps.engine,
          documents: deps.clients.documents,
          s3: deps.clients.s3,
          bucket: deps.config.names.bucket,
          viewsTable: deps.config.names.tables.batchViews,
          stateTable: deps.config.names.tables.batchState,
          settings: deps.config.settings,
          clock: deps.clock ?? Date.now,
          ...(deps.delivery ? { delivery: deps.delivery } : {}),
          ...(options.deadlineMs !== undefined ? { deadlineMs: options.deadlineMs } : {}),
          ...(deps.beforePublish ? { beforePublish: deps.beforePublish } : {}),
          ...(deps.log ? { log: deps.log } : {}),
          ...(deps.onViewRequest ? { onViewRequest: deps.onViewRequest } : {}),
        },
        rebuild ? { rebuild } : {},
      ),
    );
  };
}

const logger = new Logger({ serviceName: 'batch' });
const metrics = new Metrics({ namespace: 'PageViews', serviceName: 'batch' });
let handle: BatchHandler | undefined;
let invocation: Pick<Context, 'getRemainingTimeInMillis'> | undefined;

export const handler = async (event: BatchEvent, context: Context): Promise<RunSummary> => {
  logger.addContext(context);
  invocation = context;
  if (!handle) {
    const config = configFromEnvironment();
    const clients = awsClients();
    const engine = createAthenaEngine({
      athena: clients.athena,
      s3: clients.s3,
      workgroup: config.names.athenaWorkgroup,
      database: config.names.glueDatabase,
      // Waiting on a query stops well before Lambda's timeout: the run then stops it and releases its lease.
      remainingTimeMs: () => invocation?.getRemainingTimeInMillis() ?? Infinity,
    });
    // H follows Firehose's delivery (docs/faults.md): without its metrics no hour could be proven landed.
    const deliveryStreamName = process.env[DELIVERY_STREAM_ENV];
    if (!deliveryStreamName) throw new ConfigError(`environment variable ${DELIVERY_STREAM_ENV} is not set`);
    handle = createBatchHandler({
      clients,
      config,
      engine,
      delivery: cloudWatchDeliveryMetrics({ cloudwatch: clients.cloudwatch, deliveryStreamName }),
      log: (message) => logger.info(message),
    });
  }
  try {
    const summary = await handle(event, {
      deadlineMs: Date.now() + context.getRemainingTimeInMillis() - PUBLISH_RESERVE_MS,
    });
    logger.info('batch run finished', { ...summary });
    // Alarmed above 2 h (infra/observability.ts): H stalled behind a failing day or a lagging Firehose.
    if (summary.candidateLagMs !== undefined)
      metrics.addMetric('HorizonCandidateLagSeconds', MetricUnit.Seconds, summary.candidateLagMs / 1000);
    if (summary.watermarkMs !== undefined)
      metrics.addMetric(
        'DeliveryWatermarkLagSeconds',
        MetricUnit.Seconds,
        (Date.now() - summary.watermarkMs) / 1000,
      );
    metrics.addMetric('BatchHoursFailed', MetricUnit.Count, summary.failedHours);
    metrics.addMetric('FailingHours', MetricUnit.Count, summary.hoursOverRetryBudget);
    metrics.addMetric('UnmarkedObjectsFound', MetricUnit.Count, summary.unmarkedObjects);
    if (summary.horizon) {
      metrics.addMetric(
        'HorizonLagSeconds',
        MetricUnit.Seconds,
        (Date.now() - summary.horizon.horizonMs) / 1000,
      );
      metrics.addMetric('BatchRunsPublished', MetricUnit.Count, 1);
    }
    metrics.addMetric('BatchHoursComputed', MetricUnit.Count, summary.hours);
    metrics.addMetric('BatchViewRowsWritten', MetricUnit.Count, summary.rowsWritten);
    metrics.addMetric('BatchViewObjectsWritten', MetricUnit.Count, summary.objectsWritten);
    metrics.addMetric('UnstorableViewRows', MetricUnit.Count, summary.unstorableRows);
    return summary;
  } catch (error) {
    metrics.addMetric('BatchRunFailures', MetricUnit.Count, 1);
    logger.error('batch run failed', error as Error);
    throw error;
  } finally {
    metrics.publishStoredMetrics();
  }
};
