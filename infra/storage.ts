import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, Billing, TableEncryptionV2, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  ObjectOwnership,
  type IBucket,
} from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { PREFIXES, TABLES, type TableKey } from '../shared/resources.js';

/** Days a raw object's previous version is kept after it was overwritten or deleted: the time to restore it. */
export const RAW_NONCURRENT_DAYS = 30;

/**
 * The data bucket (raw Parquet, dead letters, Athena results) and the three tables, from shared/resources.ts.
 * Physical names are left to CloudFormation so that several stacks can live in one account.
 */
export class Storage extends Construct {
  readonly bucket: IBucket;
  /** Where the event source mapping puts batches it gave up on; apart, so that the speed role cannot touch data. */
  readonly failureBucket: IBucket;
  readonly accessLogs: IBucket;
  readonly tables: Readonly<Record<TableKey, TableV2>>;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.accessLogs = new Bucket(this, 'AccessLogs', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.bucket = new Bucket(this, 'Data', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // The master dataset's second copy: an overwritten or deleted raw object keeps its previous version for
      // RAW_NONCURRENT_DAYS (restore: docs/faults.md). Elsewhere noncurrent versions go after a day.
      versioned: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'data/',
      // "Object Created" events tell the batch layer which event hours received objects (its catalog).
      eventBridgeEnabled: true,
      lifecycleRules: [
        {
          id: 'athena-results',
          prefix: PREFIXES.athenaResults,
          expiration: Duration.days(7),
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          id: 'dead-letters',
          prefix: PREFIXES.deadLetter,
          expiration: Duration.days(90),
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          id: 'firehose-errors',
          prefix: PREFIXES.firehoseErrors,
          expiration: Duration.days(90),
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          id: 'raw-to-infrequent-access',
          prefix: PREFIXES.raw,
          transitions: [{ storageClass: { value: 'STANDARD_IA' }, transitionAfter: Duration.days(30) }],
          noncurrentVersionExpiration: Duration.days(RAW_NONCURRENT_DAYS),
        },
        // View objects are replaced and deleted by every run that changes a day: their old versions are waste.
        { id: 'batch-views', prefix: PREFIXES.batchViews, noncurrentVersionExpiration: Duration.days(1) },
        {
          id: 'abort-uploads',
          abortIncompleteMultipartUploadAfter: Duration.days(1),
          expiredObjectDeleteMarker: true,
        },
      ],
      // The master dataset is the source of truth for every view: never delete it with the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.failureBucket = new Bucket(this, 'SpeedFailures', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'speed-failures/',
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const table = (key: TableKey, pointInTimeRecovery: boolean) => {
      const description = TABLES[key];
      return new TableV2(this, `${key[0]!.toUpperCase()}${key.slice(1)}Table`, {
        partitionKey: { name: description.partitionKey, type: AttributeType.STRING },
        sortKey: { name: description.sortKey, type: AttributeType.STRING },
        billing: Billing.onDemand(),
        encryption: TableEncryptionV2.awsManagedKey(),
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: pointInTimeRecovery },
        ...('ttlAttribute' in description ? { timeToLiveAttribute: description.ttlAttribute } : {}),
        removalPolicy: key === 'speed' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      });
    };
    this.tables = {
      // Speed counters expire within days and the batch layer recomputes everything: no PITR needed.
      speed: table('speed', false),
      batchViews: table('batchViews', true),
      batchState: table('batchState', true),
    };
  }
}
