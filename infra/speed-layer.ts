import { Duration } from 'aws-cdk-lib';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IStream } from 'aws-cdk-lib/aws-kinesis';
import { StartingPosition, type IEventSourceDlq } from 'aws-cdk-lib/aws-lambda';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { PREFIXES, SPEED_FUNCTION_TIMEOUT_SECONDS, type SpeedSourceSettings } from '../shared/resources.js';
import { pageViewsFunction } from './function.js';

export interface SpeedLayerProps {
  readonly stream: IStream;
  readonly table: TableV2;
  readonly bucket: IBucket;
  /** Destination of batches the mapping gave up on (it needs read/write there). */
  readonly failureBucket: IBucket;
  readonly source: SpeedSourceSettings;
  readonly environment: Record<string, string>;
}

/** Kinesis → speed Lambda → minute counters, with the event source mapping settings the design relies on. */
export class SpeedLayer extends Construct {
  readonly function: NodejsFunction;

  constructor(scope: Construct, id: string, props: SpeedLayerProps) {
    super(scope, id);
    if (props.source.parallelizationFactor !== 1) {
      throw new Error(
        'SpeedLayer: parallelizationFactor must be 1 (one batch at a time per shard keeps counters exact)',
      );
    }
    this.function = pageViewsFunction(this, 'Function', {
      name: 'speed',
      environment: props.environment,
      memorySize: 1024,
      timeout: Duration.seconds(SPEED_FUNCTION_TIMEOUT_SECONDS),
    });
    // The mapping is declared with exactly the grants it uses (Lambda developer guide, "Process Amazon Kinesis Data
    // Streams records with Lambda" and "Retain discarded batch records"): CDK's KinesisEventSource and
    // S3OnFailureDestination would also grant enhanced fan-out reads and read-write on the failure bucket.
    const onFailure: IEventSourceDlq = { bind: () => ({ destination: props.failureBucket.bucketArn }) };
    this.function.addEventSourceMapping('KinesisEventSource', {
      eventSourceArn: props.stream.streamArn,
      startingPosition: StartingPosition.TRIM_HORIZON,
      batchSize: props.source.batchSize,
      maxBatchingWindow: Duration.seconds(props.source.maxBatchingWindowSeconds),
      bisectBatchOnError: props.source.bisectBatchOnError,
      reportBatchItemFailures: true,
      retryAttempts: props.source.retryAttempts,
      maxRecordAge: Duration.seconds(props.source.maxRecordAgeSeconds),
      parallelizationFactor: 1,
      onFailure,
    });
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: [
          'kinesis:DescribeStream',
          'kinesis:DescribeStreamSummary',
          'kinesis:GetRecords',
          'kinesis:GetShardIterator',
          'kinesis:ListShards',
        ],
        resources: [props.stream.streamArn],
      }),
    );
    this.function.addToRolePolicy(
      new PolicyStatement({ actions: ['s3:ListBucket'], resources: [props.failureBucket.bucketArn] }),
    );
    this.function.addToRolePolicy(
      new PolicyStatement({ actions: ['s3:PutObject'], resources: [props.failureBucket.arnForObjects('*')] }),
    );
    // Least privilege, as the call ledger measures it (test/ledger/): conditional updates of the counters and the
    // cell writer's read-back, a strongly consistent Query of a cell's newest generation; dead letters put under
    // dead-letter/.
    props.table.grant(this.function, 'dynamodb:UpdateItem', 'dynamodb:Query');
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:PutObject'],
        resources: [props.bucket.arnForObjects(`${PREFIXES.deadLetter}*`)],
      }),
    );
  }
}
