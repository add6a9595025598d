import { Validations, type Stack } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/**
 * cdk-nag findings that were reviewed and accepted. Each entry says where it may occur (construct path), which
 * findings it covers and why they are acceptable; anything else fails synth and the tests.
 */
export interface ReviewedFinding {
  readonly rule: RegExp;
  readonly path: RegExp;
  readonly reason: string;
}

export const REVIEWED_FINDINGS: readonly ReviewedFinding[] = [
  {
    rule: /^AwsSolutions-IAM4\[Policy::arn:<AWS::Partition>:iam::aws:policy\/service-role\/AWSLambdaBasicExecutionRole\]$/,
    path: /\/ServiceRole\/Resource$/,
    reason:
      'AWSLambdaBasicExecutionRole is the AWS-managed minimum for a function to write its own logs; it grants nothing else.',
  },
  {
    rule: /^AwsSolutions-IAM4\[Policy::arn:<AWS::Partition>:iam::aws:policy\/service-role\/AWSLambdaBasicExecutionRole\]$/,
    path: /\/BucketNotificationsHandler\w+\/Role\/Resource$/,
    reason:
      "The CDK's own custom resource that turns on the data bucket's EventBridge notifications writes only its logs.",
  },
  {
    rule: /^AwsSolutions-IAM5\[Resource::\*\]$/,
    path: /\/(Function|IngestFunction|BatchFunction|CatalogFunction|OriginSecretRotation)\/ServiceRole\/DefaultPolicy\/Resource$/,
    reason:
      "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing), and the batch function's cloudwatch:GetMetricData " +
      "(Firehose's delivery metrics, which bound the horizon), have no resource-level permissions.",
  },
  {
    rule: /^AwsSolutions-IAM5\[Resource::\*\]$/,
    path: /\/DeliveryStream\/S3 Destination Role\/DefaultPolicy\/Resource$/,
    reason:
      'glue:GetSchemaVersion, which Firehose record format conversion needs, has no resource-level permissions.',
  },
  {
    rule: /^AwsSolutions-IAM5\[Action::s3:(Abort|DeleteObject|GetBucket|GetObject|List)\*\]$/,
    path: /\/(DeliveryStream\/S3 Destination Role|BatchFunction\/ServiceRole|Speed\/Function\/ServiceRole)\/DefaultPolicy\/Resource$/,
    reason:
      'Action families from CDK grants, each bound to one bucket or prefix: Firehose writes the data bucket, the batch ' +
      'function reads raw/ and manages Athena results under athena-results/, the speed event source mapping writes failed batches to its own bucket.',
  },
  {
    rule: /^AwsSolutions-IAM5\[Resource::<\w+\.Arn>\/(raw|dead-letter|dead-letter\/batch|athena-results|batch-views)\/\*\]$/,
    path: /\/(BatchFunction|Speed\/Function|Serving\/Function)\/ServiceRole\/DefaultPolicy\/Resource$/,
    reason:
      'Object access limited to one prefix of the data bucket (raw/, dead-letter/, dead-letter/batch/, athena-results/, or batch-views/ where the view store keeps its objects).',
  },
  {
    rule: /^AwsSolutions-IAM5\[Resource::<StorageData\w+\.Arn>\/(raw|firehose-errors)\/\*\]$/,
    path: /\/DeliveryStream\/S3 Destination Role\/DefaultPolicy\/Resource$/,
    reason:
      'Firehose delivers Parquet under raw/ and failures under firehose-errors/, with prefixes computed per record ' +
      '(put and read only: it holds no delete right on the master dataset).',
  },
  {
    rule: /^AwsSolutions-IAM5\[Resource::<StorageSpeedFailures\w+\.Arn>\/\*\]$/,
    path: /\/Speed\/Function\/ServiceRole\/DefaultPolicy\/Resource$/,
    reason: 'The on-failure destination is a bucket of its own that holds nothing but failed batch records.',
  },
  {
    rule: /^AwsSolutions-IAM5\[Resource::<BatchIngestFunction\w+\.Arn>:\*\]$/,
    path: /\/DeliveryStream\/S3 Destination Role\/DefaultPolicy\/Resource$/,
    reason: 'Firehose may invoke the versions of its own transform function.',
  },
  {
    rule: /^AwsSolutions-L1$/,
    path: /\/(Function|IngestFunction|BatchFunction|CatalogFunction|OriginSecretRotation)\/Resource$/,
    reason:
      'nodejs22.x is the runtime this project builds and tests for; a newer runtime is adopted deliberately, after the suite passes on it.',
  },
  {
    rule: /^AwsSolutions-SQS3$/,
    path: /\/Batch\/CatalogDeadLetters\/Resource$/,
    reason:
      "This queue is a dead-letter queue: the catalog's EventBridge target sends it the events it could not deliver " +
      '(cdk-nag only recognizes queues that another queue names as its DLQ). It is alarmed, and holds events 14 days.',
  },
  {
    rule: /^AwsSolutions-KDF1$/,
    path: /\/DeliveryStream\/Resource$/,
    reason:
      'A delivery stream with a Kinesis stream source cannot take server-side encryption; the source stream is KMS-encrypted.',
  },
  {
    rule: /^AwsSolutions-SMG4$/,
    path: /\/Collection\/VisitorKey\/Resource$/,
    reason:
      'The visitor-hash key is not a credential: rotating it only changes visitor ids mid-day. It is rotated by hand ' +
      '(docs/collector.md, Privacy), which makes every earlier daily salt unrecomputable.',
  },
  {
    rule: /^AwsSolutions-CFR1$/,
    path: /\/Collection\/Distribution\/Resource$/,
    reason: 'Page views are collected from every country; the viewer country is what the collector records.',
  },
  {
    rule: /^AwsSolutions-CFR3$/,
    path: /\/Collection\/Distribution\/Resource$/,
    reason:
      "Privacy: CloudFront standard logs record every viewer's IP address and User-Agent, which the collector promises " +
      'not to store. The collector stage keeps access logs without them, and CloudFront metrics need no logs.',
  },
  {
    rule: /^AwsSolutions-CFR4$/,
    path: /\/Collection\/Distribution\/Resource$/,
    reason:
      'Without a custom domain the distribution uses the *.cloudfront.net certificate, for which CloudFront fixes the ' +
      'TLSv1 policy (browsers negotiate TLS 1.2 or 1.3); the configured TLSv1.2_2021 applies once a domain and certificate are added.',
  },
];

/** Acknowledges the reviewed findings of a stack, on the constructs where they occur. */
export function acknowledgeReviewedFindings(stack: Stack, extra: readonly ReviewedFinding[] = []): void {
  const report = new AwsSolutionsChecks().validateScope(stack);
  const byPath = new Map<string, IConstruct>(stack.node.findAll().map((c) => [c.node.path, c]));
  for (const violation of report.violations) {
    for (const resource of violation.violatingResources) {
      const path = resource.constructPath ?? '';
      const reviewed = [...REVIEWED_FINDINGS, ...extra].find(
        (f) => f.rule.test(violation.ruleName) && f.path.test(path),
      );
      const construct = byPath.get(path);
      if (reviewed && construct)
        Validations.of(construct).acknowledge({ id: violation.ruleName, reason: reviewed.reason });
    }
  }
}
