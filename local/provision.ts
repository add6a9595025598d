import {
  CreateTableCommand,
  DescribeTimeToLiveCommand,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  ResourceInUseException as StreamInUseException,
} from '@aws-sdk/client-kinesis';
import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import type { AwsClients } from '../shared/aws-clients.js';
import { TABLES, type ResourceNames, type TableKey } from '../shared/resources.js';

/** Creates the stream, tables and bucket of a resource description; existing resources are left as they are. */
export async function provision(
  clients: AwsClients,
  names: ResourceNames,
  options: { shards?: number } = {},
): Promise<void> {
  await Promise.all([
    provisionStream(clients, names.stream, options.shards ?? 2),
    ...(Object.keys(TABLES) as TableKey[]).map((key) => provisionTable(clients, names.tables[key], key)),
    provisionBucket(clients, names.bucket),
  ]);
}

async function provisionStream(clients: AwsClients, stream: string, shards: number): Promise<void> {
  try {
    await clients.kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: shards }));
  } catch (error) {
    if (!(error instanceof StreamInUseException)) throw error;
  }
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const { StreamDescriptionSummary: summary } = await clients.kinesis.send(
      new DescribeStreamSummaryCommand({ StreamName: stream }),
    );
    if (summary?.StreamStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`stream ${stream} did not become ACTIVE`);
}

async function provisionTable(clients: AwsClients, table: string, key: TableKey): Promise<void> {
  const description = TABLES[key];
  try {
    await clients.dynamodb.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: description.partitionKey, AttributeType: 'S' },
          { AttributeName: description.sortKey, AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: description.partitionKey, KeyType: 'HASH' },
          { AttributeName: description.sortKey, KeyType: 'RANGE' },
        ],
      }),
    );
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  await waitUntilTableExists(
    { client: clients.dynamodb, maxWaitTime: 60, minDelay: 1 },
    { TableName: table },
  );
  if ('ttlAttribute' in description) {
    // A second UpdateTimeToLive within an hour fails, so look before enabling.
    const ttl = await clients.dynamodb.send(new DescribeTimeToLiveCommand({ TableName: table }));
    const status = ttl.TimeToLiveDescription?.TimeToLiveStatus;
    if (status !== 'ENABLED' && status !== 'ENABLING') {
      await clients.dynamodb.send(
        new UpdateTimeToLiveCommand({
          TableName: table,
          TimeToLiveSpecification: { AttributeName: description.ttlAttribute, Enabled: true },
        }),
      );
    }
  }
}

async function provisionBucket(clients: AwsClients, bucket: string): Promise<void> {
  try {
    await clients.s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return;
  } catch {
    // missing: create it below
  }
  await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
}
