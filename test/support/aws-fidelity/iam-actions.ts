import type { LedgerEntry } from '../../../shared/call-ledger.js';
import type { Requirement } from './policy.js';

/**
 * What IAM requires for each SDK call the code makes: the one map from `<service>:<Operation>` (the SDK client
 * and command, as the call ledger records them) to IAM actions on resource ARNs. A call the map does not know
 * fails the ledger test, naming it: add an entry here, with the page of the Service Authorization Reference
 * (or the service's guide) that says what the call needs.
 *
 * Sources: Service Authorization Reference, "Actions, resources, and condition keys" for Amazon DynamoDB,
 * Amazon S3, Amazon Kinesis, AWS Secrets Manager, Amazon CloudFront, Amazon CloudWatch, Amazon Athena and AWS
 * Glue; S3 API reference, GetObject
 * ("If the object you request doesn't exist, the error that Amazon S3 returns depends on whether you also have
 * the s3:ListBucket permission": 404 with it, 403 without) and DeleteObjects (s3:DeleteObject for each key);
 * Athena user guide, "Access to Amazon S3" (the caller's permissions pass through Athena to S3), "AWS managed
 * policies for Amazon Athena" (what the query result location needs), "Configure access to databases and tables
 * in the AWS Glue Data Catalog" (catalog, database and table ARNs), "Partition projection" (no GetPartitions
 * call when projection is on); Athena API reference, GetQueryResults (the caller also needs s3:GetObject on the
 * result location).
 */

/** A recorded call with its input. */
export type Call = Required<Pick<LedgerEntry, 'fn' | 'service' | 'operation'>> & {
  readonly input: Record<string, unknown>;
  readonly error?: string;
};

/** The resources of the function a call runs as, named as the template names them (see stack-model.ts). */
export interface CallResources {
  table(physical: unknown): string;
  bucket(physical: unknown): string;
  object(bucket: unknown, key: unknown): string;
  stream(physical: unknown): string;
  secret(physical: unknown): string;
  /** The ARN of the CloudFront distribution the function names. */
  distribution(physical: unknown): string;
  workgroup(physical: unknown): string;
  /** What Athena does with the caller's permissions for a query in this function's workgroup. */
  athenaQuery(): Requirement[];
  /** The object GetQueryResults reads with the caller's permissions. */
  athenaResultObject(): string;
}

export type IamRule = (call: Call, on: CallResources) => Requirement[];

const TLS = { 'aws:SecureTransport': 'true' } as const;
const need = (action: string, resource: string, extra: Partial<Requirement> = {}): Requirement => ({
  action,
  resource,
  ...extra,
  context: { ...TLS, ...extra.context },
});

const onTable =
  (action: string): IamRule =>
  (c, on) => {
    const context: Record<string, string> = {};
    for (const key of ['ReturnValues', 'ReturnConsumedCapacity', 'Select'] as const) {
      if (c.input[key] !== undefined) context[`dynamodb:${key}`] = String(c.input[key]);
    }
    const table = on.table(c.input.TableName);
    return [
      need(action, c.input.IndexName ? `${table}/index/${String(c.input.IndexName)}` : table, { context }),
    ];
  };

const onSecret =
  (action: string): IamRule =>
  (c, on) => [need(action, on.secret(c.input.SecretId))];

/** A read of one object: a missing key answers 404 only to a caller that may also list the bucket. */
const objectRead: IamRule = (c, on) => [
  need('s3:GetObject', on.object(c.input.Bucket, c.input.Key)),
  ...(c.error === 'NoSuchKey' || c.error === 'NotFound'
    ? [need('s3:ListBucket', on.bucket(c.input.Bucket), { why: 'a missing key answers 404, not 403' })]
    : []),
];

export const IAM_ACTIONS: Readonly<Record<string, IamRule>> = {
  'dynamodb:GetItem': onTable('dynamodb:GetItem'),
  'dynamodb:PutItem': onTable('dynamodb:PutItem'),
  'dynamodb:UpdateItem': onTable('dynamodb:UpdateItem'),
  'dynamodb:DeleteItem': onTable('dynamodb:DeleteItem'),
  'dynamodb:Query': onTable('dynamodb:Query'),
  'dynamodb:Scan': onTable('dynamodb:Scan'),
  'dynamodb:BatchWriteItem': (c, on) =>
    Object.keys(c.input.RequestItems as object).map((table) =>
      need('dynamodb:BatchWriteItem', on.table(table)),
    ),
  'dynamodb:BatchGetItem': (c, on) =>
    Object.keys(c.input.RequestItems as object).map((table) =>
      need('dynamodb:BatchGetItem', on.table(table)),
    ),

  's3:GetObject': objectRead,
  's3:HeadObject': objectRead,
  's3:PutObject': (c, on) => [need('s3:PutObject', on.object(c.input.Bucket, c.input.Key))],
  's3:DeleteObject': (c, on) => [need('s3:DeleteObject', on.object(c.input.Bucket, c.input.Key))],
  's3:DeleteObjects': (c, on) =>
    (c.input.DeleteKeys as string[]).map((key) => need('s3:DeleteObject', on.object(c.input.Bucket, key))),
  's3:ListObjectsV2': (c, on) => [
    need('s3:ListBucket', on.bucket(c.input.Bucket), {
      context: { 's3:prefix': String(c.input.Prefix ?? '') },
    }),
  ],

  'kinesis:PutRecords': (c, on) => [
    need('kinesis:PutRecords', on.stream(c.input.StreamName ?? c.input.StreamARN)),
  ],
  'kinesis:PutRecord': (c, on) => [
    need('kinesis:PutRecord', on.stream(c.input.StreamName ?? c.input.StreamARN)),
  ],

  // Each Secrets Manager call is authorized by the action of its name on the secret (Service Authorization
  // Reference, "Actions, resources, and condition keys for AWS Secrets Manager": DescribeSecret, GetSecretValue,
  // PutSecretValue and UpdateSecretVersionStage, resource type Secret*).
  'secretsmanager:GetSecretValue': onSecret('secretsmanager:GetSecretValue'),
  'secretsmanager:DescribeSecret': onSecret('secretsmanager:DescribeSecret'),
  'secretsmanager:PutSecretValue': onSecret('secretsmanager:PutSecretValue'),
  'secretsmanager:UpdateSecretVersionStage': onSecret('secretsmanager:UpdateSecretVersionStage'),

  // CloudFront (Service Authorization Reference, "Actions, resources, and condition keys for Amazon CloudFront"):
  // GetDistributionConfig (Read) and UpdateDistribution (Write) on the distribution*, whose ARN has no region:
  // arn:${Partition}:cloudfront::${Account}:distribution/${DistributionId}.
  'cloudfront:GetDistributionConfig': (c, on) => [
    need('cloudfront:GetDistributionConfig', on.distribution(c.input.Id)),
  ],
  'cloudfront:UpdateDistribution': (c, on) => [
    need('cloudfront:UpdateDistribution', on.distribution(c.input.Id)),
  ],

  // CloudWatch (Service Authorization Reference, "Actions, resources, and condition keys for Amazon CloudWatch"):
  // GetMetricData (Read) names no resource type, so a policy can grant it only on "*".
  'cloudwatch:GetMetricData': () => [need('cloudwatch:GetMetricData', '*')],

  'athena:StartQueryExecution': (c, on) => [
    need('athena:StartQueryExecution', on.workgroup(c.input.WorkGroup)),
    ...on.athenaQuery(),
  ],
  'athena:GetQueryExecution': (c, on) => [need('athena:GetQueryExecution', on.workgroup(c.input.WorkGroup))],
  'athena:StopQueryExecution': (c, on) => [
    need('athena:StopQueryExecution', on.workgroup(c.input.WorkGroup)),
  ],
  'athena:GetQueryResults': (c, on) => [
    need('athena:GetQueryResults', on.workgroup(c.input.WorkGroup)),
    need('s3:GetObject', on.athenaResultObject(), {
      why: 'GetQueryResults reads the result with the caller’s permissions',
    }),
  ],
};

export { need };
