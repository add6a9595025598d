import { Duration } from 'aws-cdk-lib';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import type { IStream } from 'aws-cdk-lib/aws-kinesis';
import { StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { KinesisEventSource, S3OnFailureDestination } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { PREFIXES, type SpeedSourceSettings } from '../shared/resources.js';
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
      timeout: Duration.minutes(2),
    });
    this.function.addEventSource(
      new KinesisEventSource(props.stream, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: props.source.batchSize,
        maxBatchingWindow: Duration.seconds(props.source.maxBatchingWindowSeconds),
        bisectBatchOnError: props.source.bisectBatchOnError,
        reportBatchItemFailures: true,
        retryAttempts: props.source.retryAttempts,
        maxRecordAge: Duration.seconds(props.source.maxRecordAgeSeconds),
        parallelizationFactor: 1,
        onFailure: new S3OnFailureDestination(props.failureBucket),
      }),
    );
    // Least privilege, as the call ledger measures it (test/ledger/): conditional updates of the counters and the
    // cell writer's read-back, a strongly consistent Query of a cell's newest generation; puts under dead-letter/.
    props.table.grant(this.function, 'dynamodb:UpdateItem', 'dynamodb:Query');
    props.bucket.grantPut(this.function, `${PREFIXES.deadLetter}*`);
  }
}
