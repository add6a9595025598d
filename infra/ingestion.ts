import { Duration } from 'aws-cdk-lib';
import { Stream, StreamEncryption, StreamMode } from 'aws-cdk-lib/aws-kinesis';
import { Construct } from 'constructs';
import type { StreamMode as ConfiguredMode } from './config.js';

export interface IngestionProps {
  readonly streamName: string;
  /** @default 'on-demand' */
  readonly streamMode?: ConfiguredMode;
  /** Shards when provisioned. @default 2 */
  readonly shards?: number;
}

/**
 * The Kinesis stream producers write to, encrypted with KMS. The AWS-managed key (aws/kinesis) is used:
 * a customer-managed key would add KMS request charges that grow with every producer and consumer call.
 */
export class Ingestion extends Construct {
  readonly stream: Stream;

  constructor(scope: Construct, id: string, props: IngestionProps) {
    super(scope, id);
    const provisioned = props.streamMode === 'provisioned';
    this.stream = new Stream(this, 'Stream', {
      streamName: props.streamName,
      streamMode: provisioned ? StreamMode.PROVISIONED : StreamMode.ON_DEMAND,
      ...(provisioned ? { shardCount: props.shards ?? 2 } : {}),
      encryption: StreamEncryption.MANAGED,
      retentionPeriod: Duration.hours(48),
    });
  }
}
