import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { DeployConfigError, parseConfig, type ContextKey } from '../../infra/config.js';
import { PageViewsStack } from '../../infra/stack.js';
import { COLUMNS } from '../../shared/event.js';
import { buildTracker } from '../../shared/collection/tracker.js';

/** Synthesizes a stack; variants skip Lambda bundling (the default stack bundles for real). */
function synth(context: Partial<Record<ContextKey, unknown>> = {}, bundle = false) {
  const app = new App({ context: bundle ? {} : { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PageViewsStack(app, 'PageViews', { config: parseConfig(context) });
  return { stack, template: Template.fromStack(stack) };
}

describe('the deployed system', () => {
  let stack: PageViewsStack;
  let template: Template;
  beforeAll(() => {
    ({ stack, template } = synth({}, true));
  });

  it('passes cdk-nag AwsSolutions with every finding either fixed or acknowledged with a reason', () => {
    const report = new AwsSolutionsChecks().validateScope(stack);
    expect(
      report.violations.map(
        (v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
      ),
    ).toEqual([]);
  });

  it('inlines the built tracker script in the collector bundle', () => {
    const outdir = (stack.node.root as App).outdir;
    const bundles = readdirSync(outdir)
      .filter((dir) => dir.startsWith('asset.') && existsSync(join(outdir, dir, 'index.mjs')))
      .map((dir) => readFileSync(join(outdir, dir, 'index.mjs'), 'utf8'));
    expect(bundles.length).toBeGreaterThanOrEqual(5);
    const inlined = Buffer.from(buildTracker().script).toString('base64');
    expect(bundles.filter((code) => code.includes(inlined))).toHaveLength(1);
  });

  it('encrypts an on-demand stream with KMS', () => {
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamModeDetails: { StreamMode: 'ON_DEMAND' },
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
    });
  });

  it('maps the stream to the speed function with the settings exactness depends on', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 1000,
      MaximumBatchingWindowInSeconds: 1,
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      MaximumRetryAttempts: 10,
      MaximumRecordAgeInSeconds: 86_400,
      ParallelizationFactor: 1,
      StartingPosition: 'TRIM_HORIZON',
      DestinationConfig: { OnFailure: { Destination: Match.anyValue() } },
    });
  });

  it('runs every function on nodejs22.x arm64 with the shared resource description in its environment', () => {
    const functions = template.findResources('AWS::Lambda::Function', {
      Properties: { Runtime: 'nodejs22.x' },
    });
    // speed, ingest (Firehose transform), batch, catalog, api, collector, and the origin secret's rotation
    expect(Object.keys(functions)).toHaveLength(7);
    for (const fn of Object.values(functions)) {
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      // The rotation function touches no pipeline resource, so it does not get their names.
      if ('COLLECTOR_DISTRIBUTION_ID' in fn.Properties.Environment.Variables) continue;
      expect(Object.keys(fn.Properties.Environment.Variables)).toEqual(
        expect.arrayContaining([
          'STREAM_NAME',
          'SPEED_TABLE',
          'BATCH_VIEWS_TABLE',
          'BATCH_STATE_TABLE',
          'DATA_BUCKET',
          'SPEED_RETENTION_HOURS',
        ]),
      );
    }
  });

  it('keeps speed counters on demand with TTL, and batch state with point-in-time recovery', () => {
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      BillingMode: 'PAY_PER_REQUEST',
      Replicas: [
        Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: false } }),
      ],
    });
    const withRecovery = template.findResources('AWS::DynamoDB::GlobalTable', {
      Properties: {
        Replicas: [
          Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } }),
        ],
      },
    });
    expect(Object.keys(withRecovery)).toHaveLength(2);
  });

  it('converts records to Snappy Parquet against the Glue table, partitioned by event hour from the transform Lambda', () => {
    template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      DeliveryStreamType: 'KinesisStreamAsSource',
      ExtendedS3DestinationConfiguration: Match.objectLike({
        Prefix: 'raw/dt=!{partitionKeyFromLambda:dt}/hour=!{partitionKeyFromLambda:hour}/',
        ErrorOutputPrefix: 'firehose-errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/',
        BufferingHints: { IntervalInSeconds: 300, SizeInMBs: 64 },
        DynamicPartitioningConfiguration: Match.objectLike({ Enabled: true }),
        ProcessingConfiguration: Match.objectLike({
          Enabled: true,
          Processors: [Match.objectLike({ Type: 'Lambda' })],
        }),
        DataFormatConversionConfiguration: Match.objectLike({
          Enabled: true,
          InputFormatConfiguration: { Deserializer: { OpenXJsonSerDe: Match.anyValue() } },
          OutputFormatConfiguration: { Serializer: { ParquetSerDe: { Compression: 'SNAPPY' } } },
          SchemaConfiguration: Match.objectLike({
            DatabaseName: 'pageviews',
            TableName: { Ref: Match.stringLikeRegexp('RawEventsTable') },
          }),
        }),
      }),
    });
  });

  it('declares the Glue table from the shared schema with partition projection', () => {
    template.hasResourceProperties('AWS::Glue::Table', {
      TableInput: Match.objectLike({
        Name: 'raw_events',
        PartitionKeys: [
          { Name: 'dt', Type: 'string' },
          { Name: 'hour', Type: 'string' },
        ],
        Parameters: Match.objectLike({
          'projection.enabled': 'true',
          'projection.dt.type': 'date',
          'projection.dt.format': 'yyyy-MM-dd',
          'projection.hour.type': 'integer',
          'projection.hour.range': '0,23',
          'projection.hour.digits': '2',
        }),
        StorageDescriptor: Match.objectLike({
          Columns: COLUMNS.map((c) => ({ Name: c.name, Type: c.type, Comment: c.comment })),
          SerdeInfo: { SerializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' },
        }),
      }),
    });
  });

  it('limits Athena with an enforced engine-v3 workgroup and a bytes-scanned cutoff', () => {
    template.hasResourceProperties('AWS::Athena::WorkGroup', {
      Name: 'pageviews-batch',
      WorkGroupConfiguration: Match.objectLike({
        EnforceWorkGroupConfiguration: true,
        EngineVersion: { SelectedEngineVersion: 'Athena engine version 3' },
        BytesScannedCutoffPerQuery: 10 * 1024 ** 3,
      }),
    });
  });

  it('runs the batch function on a schedule, one run at a time', () => {
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(15 minutes)' });
    template.hasResourceProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: 1 });
  });

  it('protects the data bucket: encryption, no public access, TLS only, expiring Athena results and dead letters', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: 'athena-results/', ExpirationInDays: 7 }),
          Match.objectLike({ Prefix: 'dead-letter/', ExpirationInDays: 90 }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('authorizes the API with IAM by default, throttles it and logs access', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: '$default',
      AuthorizationType: 'AWS_IAM',
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      AccessLogSettings: Match.objectLike({ DestinationArn: Match.anyValue() }),
    });
  });

  it('lets the speed function write dead letters but not read or delete the master dataset', () => {
    const policies = template.findResources('AWS::IAM::Policy');
    const speed = Object.entries(policies).find(([id]) => id.startsWith('SpeedFunctionServiceRole'))![1];
    const statements = speed.Properties.PolicyDocument.Statement as {
      Action: string | string[];
      Resource: unknown;
    }[];
    const onDataBucket = statements.filter((s) => JSON.stringify(s.Resource).includes('StorageData'));
    expect(onDataBucket.flatMap((s) => [s.Action].flat())).toEqual(['s3:PutObject']);
    expect(JSON.stringify(onDataBucket)).toContain('/dead-letter/*');
  });

  it('marks the event hour of every object landed under raw/ dirty, through EventBridge and the catalog function', () => {
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: { EventBridgeConfiguration: {} },
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: { object: { key: [{ prefix: 'raw/' }] } },
      },
      Targets: [
        Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86_400 } }),
      ],
    });
    const policies = template.findResources('AWS::IAM::Policy');
    const catalog = Object.entries(policies).find(([id]) =>
      id.startsWith('BatchCatalogFunctionServiceRole'),
    )![1];
    const actions = (catalog.Properties.PolicyDocument.Statement as { Action: string | string[] }[]).flatMap(
      (s) => [s.Action].flat(),
    );
    expect(actions.filter((a) => !a.startsWith('xray:'))).toEqual(['dynamodb:UpdateItem']);
  });

  it('lets the API function read the view store objects and nothing else of the bucket', () => {
    const policies = template.findResources('AWS::IAM::Policy');
    const api = Object.entries(policies).find(([id]) => id.startsWith('ServingFunctionServiceRole'))![1];
    const statements = api.Properties.PolicyDocument.Statement as {
      Action: string | string[];
      Resource: unknown;
    }[];
    const onDataBucket = statements.filter((s) => JSON.stringify(s.Resource).includes('StorageData'));
    expect(onDataBucket.flatMap((s) => [s.Action].flat())).toEqual(['s3:GetObject']);
    expect(JSON.stringify(onDataBucket)).toContain('/batch-views/*');
  });

  it('alarms on what breaks freshness or exactness, and outputs the API URL, stream and bucket', () => {
    for (const metric of [
      'IteratorAge',
      'DeadLetterRecords',
      'WriteRejectedRecords',
      'UnstorableViewRows',
      'HorizonLagSeconds',
      'DeliveryToS3.DataFreshness',
      'DeliveryToS3.Success',
      '5xx',
      'Errors',
    ]) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: metric });
    }
    expect(Object.keys(template.findOutputs('*')).sort()).toEqual([
      'AlarmTopicArn',
      'ApiUrl',
      'BucketName',
      'CollectorUrl',
      'StreamName',
      'TrackerIntegrity',
      'TrackerScriptTag',
    ]);
  });
});

describe('configuration', () => {
  it.each([
    [{ parallelizationFactor: 2 }, /parallelizationFactor: 2 is not supported; it must be 1/],
    [{ namesPrefix: 'Bad_Prefix' }, /namesPrefix:/],
    [{ authMode: 'jwt' }, /jwtIssuer: authMode=jwt needs an https:\/\/ issuer URL/],
    [{ speedRetentionHours: 3 }, /speedRetentionHours: 3 h is too short/],
    [{ firehoseBufferMiB: 32 }, /firehoseBufferMiB: 32 must be a whole number from 64 to 128/],
    [{ streamMode: 'turbo', batchSize: 0 }, /streamMode: turbo[\s\S]*batchSize: 0/],
    [{ collectorSites: 'https://example.com' }, /collectorSites: not a host name/],
    [
      { collectorWebAclArn: 'arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/x/1' },
      /collectorWebAclArn:/,
    ],
    [
      { collectorIpRateWindowSeconds: 90 },
      /collectorIpRateWindowSeconds: 90 must be one of 60, 120, 300, 600/,
    ],
    [{ collectorIpRateLimit: 5 }, /collectorIpRateLimit: 5 must be a whole number from 10/],
    [{ collectorRateLimit: 500 }, /collectorRateLimit: removed with the collector's API Gateway/],
    [
      { collectorSites: 'shop.example', collectorKeepParams: '{"other.example":["id"]}' },
      /collectorKeepParams: keep-list: "other.example" is not one of the sites/,
    ],
    [{ collectorKeepParams: '["id"]' }, /collectorKeepParams: .* must be a JSON object/],
  ] as const)('rejects %j with a clear error', (context, message) => {
    expect(() => parseConfig(context)).toThrow(DeployConfigError);
    expect(() => parseConfig(context)).toThrow(message);
  });

  it('takes a JWT authorizer, or none for a demo', () => {
    const jwt = synth({ authMode: 'jwt', jwtIssuer: 'https://issuer.example', jwtAudience: 'a,b' }).template;
    jwt.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      JwtConfiguration: { Issuer: 'https://issuer.example', Audience: ['a', 'b'] },
    });
    const open = synth({ authMode: 'none' });
    open.template.hasResourceProperties('AWS::ApiGatewayV2::Route', { AuthorizationType: 'NONE' });
    expect(new AwsSolutionsChecks().validateScope(open.stack).violations).toEqual([]);
  });

  it('provisions shards when asked', () => {
    synth({ streamMode: 'provisioned', shards: 4 }).template.hasResourceProperties('AWS::Kinesis::Stream', {
      ShardCount: 4,
    });
  });
});

describe('cdk synth', () => {
  const cdk = (args: string[]) =>
    spawnSync('npx', ['cdk', 'synth', '--quiet', ...args], {
      encoding: 'utf8',
      env: { ...process.env, CI: 'true' },
    });

  it('synthesizes offline with locally bundled assets', () => {
    const out = mkdtempSync(join(tmpdir(), 'cdk-out-'));
    const result = cdk(['-o', out]);
    expect(result.status, result.stderr).toBe(0);
    expect(existsSync(join(out, 'PageViews.template.json'))).toBe(true);
  });

  it('fails with a clear message on a bad configuration', () => {
    const result = cdk(['-o', mkdtempSync(join(tmpdir(), 'cdk-out-')), '-c', 'parallelizationFactor=2']);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('parallelizationFactor: 2 is not supported');
  });
});
