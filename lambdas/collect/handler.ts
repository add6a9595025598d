import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { awsClients } from '../../shared/aws-clients.js';
import { runAs } from '../../shared/call-ledger.js';
import { configFromEnvironment } from '../../shared/resources.js';
import { secretStageValue, secretStageValues } from '../../shared/secrets.js';
import { collectorSettingsFromEnvironment } from '../../shared/collection/config.js';
import {
  createCollector,
  type Collector,
  type CollectorObserver,
} from '../../shared/collection/collector.js';
import { createOriginVerifier } from '../../shared/collection/origin-verify.js';
import { putRecordsWriter } from '../../shared/collection/stream-writer.js';

/**
 * Lambda function URL (the same payload v2 event as an HTTP API) → the collector. Thin adapter over collector.ts.
 */

export type CollectHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

export function createCollectHandler(collector: Collector): CollectHandler {
  return (event) =>
    runAs('collect', async () => {
      const body =
        event.body === undefined
          ? undefined
          : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
      const response = await collector({
        method: event.requestContext.http.method,
        path: event.rawPath,
        headers: event.headers ?? {},
        ...(body ? { body } : {}),
        sourceIp: event.requestContext.http.sourceIp,
      });
      return response;
    });
}

/** The tracker script, built by esbuild and inlined at bundle time (infra/collection-layer.ts). */
declare const TRACKER_SCRIPT_BASE64: string | undefined;

const logger = new Logger({ serviceName: 'collect' });
const metrics = new Metrics({ namespace: 'PageViews', serviceName: 'collect' });

const lambdaObserver: CollectorObserver = {
  count: (metric, value) => metrics.addMetric(metric, MetricUnit.Count, value),
  // No request details here: the address and User-Agent must not reach the logs.
  error: (message, error) => logger.error(message, error as Error),
};

let handle: Promise<CollectHandler> | undefined;

async function coldStart(): Promise<CollectHandler> {
  const config = configFromEnvironment();
  const settings = collectorSettingsFromEnvironment();
  const clients = awsClients();
  const visitorKey = await secretStageValue(
    clients.secretsManager,
    settings.visitorKeySecretArn,
    'AWSCURRENT',
  );
  if (!visitorKey) throw new Error('the visitor key secret has no string value');
  const origin = createOriginVerifier({
    load: () =>
      secretStageValues(clients.secretsManager, settings.originSecretArn, [
        'AWSCURRENT',
        'AWSPENDING',
        'AWSPREVIOUS',
      ]),
    onReloadError: (error) => logger.error('reading the origin secret failed', error as Error),
  });
  return createCollectHandler(
    createCollector({
      writer: putRecordsWriter(clients.kinesis, config.names.stream),
      config: {
        sites: settings.sites,
        visitorKey,
        origin,
        ...(typeof TRACKER_SCRIPT_BASE64 === 'string'
          ? { trackerScript: Buffer.from(TRACKER_SCRIPT_BASE64, 'base64').toString('utf8') }
          : {}),
      },
      observer: lambdaObserver,
    }),
  );
}

export const handler = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
  handle ??= runAs('collect', coldStart).catch((error: unknown) => {
    handle = undefined;
    throw error;
  });
  try {
    return await (
      await handle
    )(event);
  } finally {
    metrics.publishStoredMetrics();
  }
};
