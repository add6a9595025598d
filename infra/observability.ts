import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  Metric,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import type { DeliveryStream } from 'aws-cdk-lib/aws-kinesisfirehose';
import type { IStream } from 'aws-cdk-lib/aws-kinesis';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { alarmToExpiryHours, HORIZON_LAG_ALARM_SECONDS } from '../shared/batch/lag.js';
import type { Settings } from '../shared/resources.js';

export interface ObservabilityProps {
  readonly stream: IStream;
  readonly speedFunction: NodejsFunction;
  readonly batchFunction: NodejsFunction;
  readonly apiFunction: NodejsFunction;
  readonly api: HttpApi;
  readonly deliveryStream: DeliveryStream;
  /** The public collector: alarms when the stream does not take its events. */
  readonly collectorFunction: NodejsFunction;
  /** The catalog: its function and the dead-letter queue of its EventBridge target. */
  readonly catalogFunction: NodejsFunction;
  readonly catalogDeadLetters: IQueue;
  readonly settings: Settings;
  readonly alarmEmail?: string;
}

/** Alarms on what breaks exactness or freshness, an SNS topic for them, and a dashboard. */
export class Observability extends Construct {
  readonly topic: Topic;
  readonly alarms: Record<string, Alarm> = {};
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const topicKey = new Key(this, 'TopicKey', {
      enableKeyRotation: true,
      description: 'Encrypts the alarm topic',
    });
    this.topic = new Topic(this, 'AlarmTopic', {
      displayName: 'Page-view pipeline alarms',
      masterKey: topicKey,
      enforceSSL: true,
    });
    // CloudWatch publishes alarms itself, as cloudwatch.amazonaws.com: it needs the topic's key (SNS developer
    // guide, "Key management": compatibility with event sources from AWS services: kms:Decrypt and
    // kms:GenerateDataKey*) and, since the topic has a policy of its own (enforceSSL) instead of SNS's default, a
    // statement there (AWS re:Post knowledge center, "cloudwatch-receive-sns-for-alarm-trigger"). Without them
    // every alarm changes state and notifies no one.
    const cloudwatch = new ServicePrincipal('cloudwatch.amazonaws.com');
    const ownAlarms = {
      ArnLike: {
        'aws:SourceArn': Stack.of(this).formatArn({
          service: 'cloudwatch',
          resource: 'alarm',
          resourceName: '*',
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      },
    };
    topicKey.addToResourcePolicy(
      new PolicyStatement({
        principals: [cloudwatch],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: ownAlarms,
      }),
    );
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        principals: [cloudwatch],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: ownAlarms,
      }),
    );
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    const custom = (metricName: string, service: string, statistic = 'Sum') =>
      new Metric({
        namespace: 'PageViews',
        metricName,
        dimensionsMap: { service },
        statistic,
        period: Duration.minutes(5),
      });

    const iteratorAge = props.speedFunction.metric('IteratorAge', {
      statistic: 'Maximum',
      period: Duration.minutes(1),
    });
    const deadLetters = custom('DeadLetterRecords', 'speed');
    const horizonLag = custom('HorizonLagSeconds', 'batch', 'Maximum');
    const freshness = props.deliveryStream.metric('DeliveryToS3.DataFreshness', {
      statistic: 'Maximum',
      period: Duration.minutes(5),
    });
    const deliverySuccess = props.deliveryStream.metric('DeliveryToS3.Success', {
      statistic: 'Minimum',
      period: Duration.minutes(5),
    });
    const api5xx = props.api.metricServerError({ period: Duration.minutes(5) });
    // H normally trails the clock by about an hour plus the buffer; three schedule periods more is stale.
    const staleSeconds =
      3600 + props.settings.firehoseBufferSeconds + 300 + 3 * props.settings.batchScheduleMinutes * 60;

    const alarm = (
      name: string,
      metric: IMetric,
      threshold: number,
      description: string,
      missing = TreatMissingData.NOT_BREACHING,
    ) => {
      const created = new Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator:
          name === 'FirehoseDeliveryFailures' || name === 'FirehoseTransformFailures'
            ? ComparisonOperator.LESS_THAN_THRESHOLD
            : ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: missing,
        alarmDescription: description,
      });
      created.addAlarmAction(new SnsAction(this.topic));
      this.alarms[name] = created;
    };
    alarm('SpeedIteratorAge', iteratorAge, 60_000, 'The speed layer is more than a minute behind the stream');
    alarm(
      'SpeedErrors',
      props.speedFunction.metricErrors({ period: Duration.minutes(5) }),
      1,
      'The speed handler failed invocations',
    );
    alarm('DeadLetterRecords', deadLetters, 1, 'Records were rejected and kept under dead-letter/');
    alarm(
      'WriteRejectedRecords',
      custom('WriteRejectedRecords', 'speed'),
      1,
      'Speed counter writes failed with an error no retry can fix; the records are under dead-letter/speed/',
    );
    alarm(
      'UnstorableViewRows',
      custom('UnstorableViewRows', 'batch'),
      1,
      'Batch view rows were refused by the views table; they are under dead-letter/batch/',
    );
    alarm(
      'BatchFailures',
      props.batchFunction.metricErrors({ period: Duration.minutes(15) }),
      1,
      'A batch run failed',
    );
    alarm(
      'HorizonStale',
      horizonLag,
      staleSeconds,
      'The published horizon H lags the clock by more than expected: batch runs are failing or not running',
      TreatMissingData.BREACHING,
    );
    // H stalled behind what the clock allows (a failing day, a lagging Firehose): the speed counters of the
    // hours after H expire speedRetentionHours after their minute (shared/batch/lag.ts, docs/faults.md).
    const candidateLag = new Metric({
      namespace: 'PageViews',
      metricName: 'HorizonCandidateLagSeconds',
      dimensionsMap: { service: 'batch' },
      statistic: 'Maximum',
      period: Duration.minutes(props.settings.batchScheduleMinutes),
    });
    alarm(
      'HorizonBehindCandidate',
      candidateLag,
      HORIZON_LAG_ALARM_SECONDS,
      `H trails what the clock allows by more than ${HORIZON_LAG_ALARM_SECONDS / 3600} h; the speed counters it ` +
        `leaves to the API expire ${alarmToExpiryHours(props.settings).toFixed(1)} h after this alarm`,
      TreatMissingData.IGNORE,
    );
    alarm(
      'BatchHoursOverRetryBudget',
      custom('FailingHours', 'batch', 'Maximum'),
      1,
      'Hours failed to compute on every attempt of their retry budget; H stays before them (see the batch logs)',
    );
    alarm(
      'CatalogDeadLetters',
      props.catalogDeadLetters.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5) }),
      1,
      'S3 Object Created events failed to reach the catalog after their retries (queue CatalogDeadLetters); ' +
        'the batch run reconciles the last 48 h of partitions, older hours need a rebuild (docs/faults.md)',
    );
    alarm(
      'CatalogErrors',
      props.catalogFunction.metricErrors({ period: Duration.minutes(5) }),
      1,
      'The catalog function failed invocations (EventBridge retries them)',
    );
    alarm(
      'ObjectsFoundUnmarked',
      custom('UnmarkedObjectsFound', 'batch'),
      1,
      'A batch run found landed raw objects that no notification had marked (now marked): notifications are being lost',
    );
    alarm('Api5xx', api5xx, 1, 'The query API answered with server errors');
    alarm(
      'FirehoseFreshness',
      freshness,
      props.settings.firehoseBufferSeconds + 900,
      'Firehose is late delivering to S3',
    );
    alarm('FirehoseDeliveryFailures', deliverySuccess, 1, 'Firehose failed deliveries to S3');
    // Firehose developer guide, data transformation metrics: ExecuteProcessing.Success is the share of
    // successful transform invocations. Failed batches go to processing-failed/ after the retries.
    alarm(
      'FirehoseTransformFailures',
      props.deliveryStream.metric('ExecuteProcessing.Success', {
        statistic: 'Minimum',
        period: Duration.minutes(5),
      }),
      1,
      'Firehose transform invocations failed; after their retries the records go to firehose-errors/processing-failed/',
    );
    alarm(
      'ProcessingFailedObjects',
      custom('ProcessingFailedObjects', 'catalog'),
      1,
      'Records are under firehose-errors/processing-failed/ and out of the master dataset: run npm run redrive (docs/faults.md)',
    );
    const collected = custom('EventsAccepted', 'collect');
    const streamFailures = custom('StreamWriteFailures', 'collect');
    alarm(
      'CollectorStreamFailures',
      streamFailures,
      1,
      'The collector answered 503: the stream did not take page views from browsers',
    );
    alarm(
      'CollectorErrors',
      props.collectorFunction.metricErrors({ period: Duration.minutes(5) }),
      1,
      'The collector function failed invocations',
    );
    const originUnverified = custom('OriginUnverified', 'collect');
    alarm(
      'CollectorOriginUnverified',
      originUnverified,
      100,
      'The collector refused many requests without a current origin secret: its function URL is called directly, ' +
        'or CloudFront sends a value the collector does not accept (a failed rotation refuses every page view)',
    );

    this.dashboard = new Dashboard(this, 'Dashboard', {
      widgets: [
        [
          new GraphWidget({
            title: 'Stream: incoming records',
            left: [props.stream.metricIncomingRecords()],
          }),
          new GraphWidget({ title: 'Speed: iterator age (ms)', left: [iteratorAge] }),
          new GraphWidget({
            title: 'Speed: records',
            left: [custom('RecordsCounted', 'speed'), deadLetters, custom('CellWrites', 'speed')],
          }),
        ],
        [
          new GraphWidget({ title: 'Batch: horizon lag (s)', left: [horizonLag] }),
          new GraphWidget({ title: 'Firehose: data freshness (s)', left: [freshness] }),
          new GraphWidget({
            title: 'API: requests, 5xx, latency',
            left: [props.api.metricCount({ period: Duration.minutes(5) }), api5xx],
            right: [props.apiFunction.metricDuration({ statistic: 'p99' })],
          }),
        ],
        [
          new GraphWidget({
            title: 'Collector: page views accepted, rejected, bots, stream failures',
            left: [
              collected,
              custom('EventsRejected', 'collect'),
              custom('BotEventsDropped', 'collect'),
              streamFailures,
            ],
            right: [props.collectorFunction.metricDuration({ statistic: 'p99' })],
          }),
        ],
      ],
    });
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Collector: refused (not via CloudFront, wrong site), url parameters removed, ages clamped',
        left: [originUnverified, custom('SiteRefused', 'collect')],
        right: [custom('UrlParametersRemoved', 'collect'), custom('EventAgeClamped', 'collect')],
      }),
    );
  }
}
