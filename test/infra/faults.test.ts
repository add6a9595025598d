import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { DeployConfigError, parseConfig } from '../../infra/config.js';
import { PageViewsStack } from '../../infra/stack.js';
import { RAW_NONCURRENT_DAYS } from '../../infra/storage.js';
import { alarmToExpiryHours, HORIZON_LAG_ALARM_SECONDS, MIN_RESPONSE_HOURS } from '../../shared/batch/lag.js';
import { DEFAULT_SETTINGS, DELIVERY_STREAM_ENV, PREFIXES } from '../../shared/resources.js';

type Statement = { Effect: string; Action: string | string[]; Resource: unknown };
const actionsOf = (statement: Statement) => [statement.Action].flat();

describe('the template holds what keeps the pipeline exact through faults', () => {
  let template: Template;
  beforeAll(() => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    template = Template.fromStack(new PageViewsStack(app, 'PageViews', { config: parseConfig({}) }));
  });

  const policy = (idPrefix: string): Statement[] => {
    const [, found] = Object.entries(template.findResources('AWS::IAM::Policy')).find(([id]) =>
      id.startsWith(idPrefix),
    )!;
    return (found as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties.PolicyDocument
      .Statement;
  };

  it('versions the data bucket and keeps a raw object’s previous version for a month', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({
            Prefix: PREFIXES.raw,
            NoncurrentVersionExpiration: { NoncurrentDays: RAW_NONCURRENT_DAYS },
          }),
          Match.objectLike({
            Prefix: PREFIXES.batchViews,
            NoncurrentVersionExpiration: { NoncurrentDays: 1 },
          }),
        ]),
      },
    });
  });

  it('gives Firehose no delete right on the data bucket, and object rights only where it writes', () => {
    const statements = policy('BatchDeliveryStreamS3DestinationRole');
    const s3 = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
    expect(s3.flatMap(actionsOf).sort()).toEqual([
      's3:AbortMultipartUpload',
      's3:GetBucketLocation',
      's3:GetObject',
      's3:ListBucket',
      's3:ListBucketMultipartUploads',
      's3:PutObject',
    ]);
    const objects = JSON.stringify(s3.find((s) => actionsOf(s).includes('s3:PutObject'))!.Resource);
    expect(objects).toContain(`/${PREFIXES.raw}*`);
    expect(objects).toContain(`/${PREFIXES.firehoseErrors}*`);
    expect(objects).not.toMatch(/"\/\*"/);
  });

  it('sends the catalog’s undeliverable notifications to an encrypted dead-letter queue, for both of its rules', () => {
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
    for (const prefix of [PREFIXES.raw, PREFIXES.processingFailed])
      template.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: Match.objectLike({
          detail: { bucket: Match.anyValue(), object: { key: [{ prefix }] } },
        }),
        Targets: [
          Match.objectLike({ DeadLetterConfig: { Arn: Match.anyValue() }, RetryPolicy: Match.anyValue() }),
        ],
      });
  });

  it('lets the batch function read Firehose’s delivery metrics, names its delivery stream, and reads results without GetQueryResults', () => {
    const statements = policy('BatchBatchFunctionServiceRoleDefaultPolicy');
    expect(statements).toContainEqual(
      expect.objectContaining({ Action: 'cloudwatch:GetMetricData', Resource: '*', Effect: 'Allow' }),
    );
    expect(statements.flatMap(actionsOf)).not.toContain('athena:GetQueryResults');
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [DELIVERY_STREAM_ENV]: { Ref: Match.stringLikeRegexp('DeliveryStream') },
        }),
      },
    });
  });

  it('sizes the batch function for a bounded run: one vCPU, and /tmp for the spill of a day', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: 1769,
      EphemeralStorage: { Size: 2048 },
      Environment: { Variables: Match.objectLike({ [DELIVERY_STREAM_ENV]: Match.anyValue() }) },
    });
  });

  it('keeps the catalog’s landed sets with a TTL in the batch-state table', () => {
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      Replicas: Match.anyValue(),
    });
    const ttl = Object.values(template.findResources('AWS::DynamoDB::GlobalTable')).filter(
      (t) => (t as { Properties: { TimeToLiveSpecification?: unknown } }).Properties.TimeToLiveSpecification,
    );
    expect(ttl).toHaveLength(2);
  });

  it('alarms on a stalled horizon, failing hours, lost notifications and failed transforms', () => {
    const alarm = (metricName: string, extra: Record<string, unknown> = {}) =>
      template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: metricName, ...extra });
    alarm('HorizonCandidateLagSeconds', {
      Threshold: HORIZON_LAG_ALARM_SECONDS,
      Statistic: 'Maximum',
      Period: DEFAULT_SETTINGS.batchScheduleMinutes * 60,
      AlarmDescription: Match.stringLikeRegexp(
        `expire ${alarmToExpiryHours(DEFAULT_SETTINGS).toFixed(1)} h after`,
      ),
    });
    alarm('FailingHours', { Threshold: 1 });
    alarm('ApproximateNumberOfMessagesVisible', { Namespace: 'AWS/SQS', Threshold: 1 });
    alarm('UnmarkedObjectsFound', { Threshold: 1 });
    alarm('ProcessingFailedObjects', { Threshold: 1, Dimensions: [{ Name: 'service', Value: 'catalog' }] });
    alarm('ExecuteProcessing.Success', {
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      Statistic: 'Minimum',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: Match.stringLikeRegexp('CatalogFunction') } }],
    });
  });
});

describe('the config check keeps time between the stalled-horizon alarm and speed-counter expiry', () => {
  it(`leaves ${MIN_RESPONSE_HOURS} h or more with the defaults (${alarmToExpiryHours(DEFAULT_SETTINGS).toFixed(1)} h)`, () => {
    expect(alarmToExpiryHours(DEFAULT_SETTINGS)).toBeGreaterThanOrEqual(MIN_RESPONSE_HOURS);
  });

  it('is the gap the README and docs/faults.md state', () => {
    const gap = alarmToExpiryHours(DEFAULT_SETTINGS);
    expect(readFileSync('README.md', 'utf8')).toContain(`about ${Math.floor(gap)} h before the first speed`);
    expect(readFileSync('docs/faults.md', 'utf8')).toContain(`${gap.toFixed(2)} h with the defaults`);
  });

  it('refuses a retention that would leave less, naming the alarm, and takes the least that leaves enough', () => {
    const least = Math.ceil(
      DEFAULT_SETTINGS.speedRetentionHours - alarmToExpiryHours(DEFAULT_SETTINGS) + MIN_RESPONSE_HOURS,
    );
    expect(() => parseConfig({ speedRetentionHours: least - 1 })).toThrow(DeployConfigError);
    expect(() => parseConfig({ speedRetentionHours: least - 1 })).toThrow(
      new RegExp(`speedRetentionHours: ${least - 1} h is too short.*${MIN_RESPONSE_HOURS} h past the alarm`),
    );
    const settings = parseConfig({ speedRetentionHours: least }).settings;
    expect(alarmToExpiryHours(settings)).toBeGreaterThanOrEqual(MIN_RESPONSE_HOURS);
    // A slower schedule moves the alarm later, so it needs longer counters.
    expect(() => parseConfig({ speedRetentionHours: least, batchScheduleMinutes: 60 })).toThrow(/too short/);
  });
});
