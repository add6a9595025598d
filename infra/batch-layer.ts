import { Aws, Duration, Size, Stack } from 'aws-cdk-lib';
import { CfnWorkGroup } from 'aws-cdk-lib/aws-athena';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { CfnDatabase, CfnTable } from 'aws-cdk-lib/aws-glue';
import { Grant, PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import {
  DeliveryStream,
  InputFormat,
  KinesisStreamSource,
  LambdaFunctionProcessor,
  ParquetCompression,
  ParquetOutputFormat,
  S3Bucket,
  SchemaConfiguration,
} from 'aws-cdk-lib/aws-kinesisfirehose';
import type { IStream } from 'aws-cdk-lib/aws-kinesis';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { COLUMNS, EVENT_LIMITS } from '../shared/event.js';
import { DELIVERY_STREAM_ENV, PREFIXES, type Settings } from '../shared/resources.js';
import { pageViewsFunction } from './function.js';

export interface BatchLayerProps {
  readonly stream: IStream;
  readonly bucket: IBucket;
  readonly viewsTable: TableV2;
  readonly stateTable: TableV2;
  readonly glueDatabase: string;
  readonly glueTable: string;
  readonly workgroupName: string;
  readonly settings: Settings;
  readonly bytesScannedCutoff: number;
  readonly environment: Record<string, string>;
}

/**
 * The data bucket as the Firehose destination sees it: the S3 destination grants its role read-write on the
 * bucket it is given, which includes s3:DeleteObject* everywhere. Firehose needs no delete (Firehose developer
 * guide, "Grant Firehose access to an Amazon S3 destination": AbortMultipartUpload, GetBucketLocation,
 * GetObject, ListBucket, ListBucketMultipartUploads, PutObject), so this bucket grants exactly those, and the
 * object ones only under raw/ and firehose-errors/, where Firehose writes.
 */
function firehoseWritesOnly(bucket: IBucket): IBucket {
  const destination = Object.create(bucket) as IBucket;
  Object.defineProperty(destination, 'grantReadWrite', {
    value: (grantee: IGrantable): Grant =>
      Grant.addToPrincipal({
        grantee,
        actions: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'],
        resourceArns: [bucket.bucketArn],
      }).combine(
        Grant.addToPrincipal({
          grantee,
          actions: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'],
          resourceArns: [
            bucket.arnForObjects(`${PREFIXES.raw}*`),
            bucket.arnForObjects(`${PREFIXES.firehoseErrors}*`),
          ],
        }),
      ),
  });
  return destination;
}

/**
 * The master dataset and the batch views: Firehose (stream source, validating transform Lambda, dynamic
 * partitioning by event hour, Parquet conversion against the Glue table), a Glue table with partition
 * projection, an Athena workgroup, and the scheduled batch Lambda.
 */
export class BatchLayer extends Construct {
  readonly deliveryStream: DeliveryStream;
  readonly ingestFunction: NodejsFunction;
  readonly batchFunction: NodejsFunction;
  readonly glueTable: CfnTable;
  readonly workgroup: CfnWorkGroup;
  readonly schedule: Rule;
  readonly catalogFunction: NodejsFunction;
  readonly rawObjectCreated: Rule;
  readonly processingFailedObjectCreated: Rule;
  /** Object Created events the catalog target could not deliver. */
  readonly catalogDeadLetters: Queue;

  constructor(scope: Construct, id: string, props: BatchLayerProps) {
    super(scope, id);
    const { bucket, settings } = props;
    const database = new CfnDatabase(this, 'Database', {
      catalogId: Aws.ACCOUNT_ID,
      databaseInput: { name: props.glueDatabase, description: 'Page-view master dataset' },
    });
    const rawLocation = `s3://${bucket.bucketName}/${PREFIXES.raw}`;
    this.glueTable = new CfnTable(this, 'RawEventsTable', {
      catalogId: Aws.ACCOUNT_ID,
      databaseName: props.glueDatabase,
      tableInput: {
        name: props.glueTable,
        description: 'Raw page views as Parquet, partitioned by event time (UTC)',
        tableType: 'EXTERNAL_TABLE',
        parameters: {
          classification: 'parquet',
          'parquet.compression': 'SNAPPY',
          // Partition projection: Athena computes partitions from these rules; no crawler or MSCK REPAIR.
          'projection.enabled': 'true',
          'projection.dt.type': 'date',
          'projection.dt.format': 'yyyy-MM-dd',
          // From the oldest event time the validator accepts: Athena projects no partition before the range starts,
          // so a later start would hide accepted events from every batch run (DuckDB locally would still count them).
          'projection.dt.range': `${new Date(EVENT_LIMITS.minCreatedMs).toISOString().slice(0, 10)},NOW`,
          'projection.dt.interval': '1',
          'projection.dt.interval.unit': 'DAYS',
          'projection.hour.type': 'integer',
          'projection.hour.range': '0,23',
          'projection.hour.digits': '2',
          'storage.location.template': `${rawLocation}dt=\${dt}/hour=\${hour}/`,
        },
        partitionKeys: [
          { name: 'dt', type: 'string' },
          { name: 'hour', type: 'string' },
        ],
        storageDescriptor: {
          location: rawLocation,
          columns: COLUMNS.map((c) => ({ name: c.name, type: c.type, comment: c.comment })),
          inputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
          outputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat',
          serdeInfo: { serializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' },
        },
      },
    });
    this.glueTable.node.addDependency(database);

    this.ingestFunction = pageViewsFunction(this, 'IngestFunction', {
      name: 'ingest',
      environment: props.environment,
      memorySize: 512,
      timeout: Duration.minutes(1),
    });
    this.deliveryStream = new DeliveryStream(this, 'DeliveryStream', {
      source: new KinesisStreamSource(props.stream),
      destination: new S3Bucket(firehoseWritesOnly(bucket), {
        dataOutputPrefix: `${PREFIXES.raw}dt=!{partitionKeyFromLambda:dt}/hour=!{partitionKeyFromLambda:hour}/`,
        errorOutputPrefix: `${PREFIXES.firehoseErrors}!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/`,
        bufferingInterval: Duration.seconds(settings.firehoseBufferSeconds),
        bufferingSize: Size.mebibytes(settings.firehoseBufferMiB),
        processors: [new LambdaFunctionProcessor(this.ingestFunction, { retries: 3 })],
        dynamicPartitioning: { enabled: true, retryDuration: Duration.minutes(5) },
        dataFormatConversion: {
          schemaConfiguration: SchemaConfiguration.fromCfnTable(this.glueTable),
          inputFormat: InputFormat.OPENX_JSON,
          outputFormat: new ParquetOutputFormat({ compression: ParquetCompression.SNAPPY }),
        },
      }),
    });

    this.workgroup = new CfnWorkGroup(this, 'Workgroup', {
      name: props.workgroupName,
      description: 'Batch views of the page-view master dataset',
      recursiveDeleteOption: true,
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        engineVersion: { selectedEngineVersion: 'Athena engine version 3' },
        bytesScannedCutoffPerQuery: props.bytesScannedCutoff,
        publishCloudWatchMetricsEnabled: true,
        resultConfiguration: {
          outputLocation: `s3://${bucket.bucketName}/${PREFIXES.athenaResults}`,
          encryptionConfiguration: { encryptionOption: 'SSE_S3' },
        },
      },
    });

    this.batchFunction = pageViewsFunction(this, 'BatchFunction', {
      name: 'batch',
      environment: props.environment,
      // A run's memory no longer grows with a day's rows (they spill to /tmp: shared/views/spill.ts; the flood
      // bench runs an hour of 2M distinct urls in under 0.5 GB RSS): 1,769 MB is one full vCPU for the JSON
      // and gzip work, and 2 GiB of /tmp holds the spill of a day of millions of rows.
      memorySize: 1769,
      ephemeralStorageSize: Size.gibibytes(2),
      timeout: Duration.minutes(10),
      // One run at a time, on top of the batch layer's own lease.
      reservedConcurrentExecutions: 1,
      copyFiles: { from: 'shared/sql', pattern: '*.sql' },
    });
    const stack = Stack.of(this);
    this.batchFunction.addToRolePolicy(
      new PolicyStatement({
        // Results are read from their CSV file under athena-results/ (one GET), not with GetQueryResults.
        actions: ['athena:StartQueryExecution', 'athena:GetQueryExecution', 'athena:StopQueryExecution'],
        resources: [
          stack.formatArn({ service: 'athena', resource: 'workgroup', resourceName: props.workgroupName }),
        ],
      }),
    );
    // What Athena does with the caller's permissions (Athena user guide: "Access to Amazon S3", "Configure access
    // to databases and tables in the AWS Glue Data Catalog", "AWS managed policies" for the result location). With
    // partition projection Athena computes partitions instead of calling glue:GetPartitions ("Partition
    // projection"). The call ledger checks each grant below against what the code and Athena need (test/ledger/).
    const catalog = stack.formatArn({ service: 'glue', resource: 'catalog' });
    const databaseArn = stack.formatArn({
      service: 'glue',
      resource: 'database',
      resourceName: props.glueDatabase,
    });
    this.batchFunction.addToRolePolicy(
      new PolicyStatement({ actions: ['glue:GetDatabase'], resources: [catalog, databaseArn] }),
    );
    this.batchFunction.addToRolePolicy(
      new PolicyStatement({
        actions: ['glue:GetTable'],
        resources: [
          catalog,
          databaseArn,
          stack.formatArn({
            service: 'glue',
            resource: 'table',
            resourceName: `${props.glueDatabase}/${props.glueTable}`,
          }),
        ],
      }),
    );
    // The delivery watermark (shared/batch/delivery.ts): Firehose's own metrics of this delivery stream.
    // GetMetricData takes no resource ARN (CloudWatch permissions reference: Resource "*").
    this.batchFunction.addEnvironment(DELIVERY_STREAM_ENV, this.deliveryStream.deliveryStreamName);
    this.batchFunction.addToRolePolicy(
      new PolicyStatement({ actions: ['cloudwatch:GetMetricData'], resources: ['*'] }),
    );
    const objects = (prefix: string, ...actions: string[]) =>
      this.batchFunction.addToRolePolicy(
        new PolicyStatement({ actions, resources: [bucket.arnForObjects(`${prefix}*`)] }),
      );
    // The master dataset, read by the query (and locally by the DuckDB stand-in, which lists each partition).
    objects(PREFIXES.raw, 's3:GetObject');
    // Query results: Athena writes them (multipart for large ones) and GetQueryResults reads them back.
    objects(
      PREFIXES.athenaResults,
      's3:PutObject',
      's3:GetObject',
      's3:AbortMultipartUpload',
      's3:ListMultipartUploadParts',
    );
    // View rows the views table refuses for good are kept there, never retried.
    objects(`${PREFIXES.deadLetter}batch/`, 's3:PutObject');
    // The view store: objects under batch-views/, written, read back when a day is rebuilt, deleted once replaced.
    objects(PREFIXES.batchViews, 's3:GetObject', 's3:PutObject', 's3:DeleteObject');
    this.batchFunction.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:ListBucket', 's3:GetBucketLocation', 's3:ListBucketMultipartUploads'],
        resources: [bucket.bucketArn],
      }),
    );
    // Totals and the view store's manifests; UpdateItem widens the sites' spans (shared/batch/sites.ts). The state
    // table's horizon, lease, dirty hours, runs and garbage list.
    props.viewsTable.grant(
      this.batchFunction,
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:BatchWriteItem',
      'dynamodb:UpdateItem',
      'dynamodb:Query',
    );
    // BatchGetItem and UpdateItem: the reconciliation reads the landed sets of the last 48 hours and marks
    // what a lost notification left unmarked (shared/batch/catalog.ts).
    props.stateTable.grant(
      this.batchFunction,
      'dynamodb:GetItem',
      'dynamodb:BatchGetItem',
      'dynamodb:UpdateItem',
      'dynamodb:PutItem',
      'dynamodb:DeleteItem',
      'dynamodb:Query',
    );

    // The catalog: every object Firehose lands under raw/ marks its event hour dirty for the next run.
    this.catalogFunction = pageViewsFunction(this, 'CatalogFunction', {
      name: 'catalog',
      environment: props.environment,
      memorySize: 256,
      timeout: Duration.seconds(30),
    });
    props.stateTable.grant(this.catalogFunction, 'dynamodb:UpdateItem');
    // A notification the catalog could not take after EventBridge's retries lands here (and is alarmed); the
    // batch run's reconciliation marks its object's hour anyway (shared/batch/catalog.ts).
    this.catalogDeadLetters = new Queue(this, 'CatalogDeadLetters', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.rawObjectCreated = new Rule(this, 'RawObjectCreated', {
      description: 'Marks the event hour of each raw object dirty for the batch layer',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: { bucket: { name: [bucket.bucketName] }, object: { key: [{ prefix: PREFIXES.raw }] } },
      },
      targets: [
        new LambdaFunction(this.catalogFunction, {
          retryAttempts: 185,
          maxEventAge: Duration.hours(24),
          deadLetterQueue: this.catalogDeadLetters,
        }),
      ],
    });

    // Records Firehose set aside after its transform retries: counted by the catalog (alarmed) for a redrive.
    this.processingFailedObjectCreated = new Rule(this, 'ProcessingFailedObjectCreated', {
      description:
        'Counts the objects of records Firehose could not process (npm run redrive puts them back)',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [bucket.bucketName] },
          object: { key: [{ prefix: PREFIXES.processingFailed }] },
        },
      },
      targets: [
        new LambdaFunction(this.catalogFunction, {
          retryAttempts: 185,
          maxEventAge: Duration.hours(24),
          deadLetterQueue: this.catalogDeadLetters,
        }),
      ],
    });

    this.schedule = new Rule(this, 'Schedule', {
      description: 'Runs the batch layer',
      schedule: Schedule.rate(Duration.minutes(settings.batchScheduleMinutes)),
      targets: [new LambdaFunction(this.batchFunction, { retryAttempts: 0 })],
    });
  }
}
