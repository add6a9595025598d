import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DescribeTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { provision } from '../../local/provision.js';
import { testStack, type TestStack } from './support/stack.js';

describe('local stack provisioning', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await testStack('provisioning', { shards: 2 });
  });
  afterAll(() => stack.destroy());

  it('creates a stream with the asked shards that takes and returns records', async () => {
    const { shards = [] } = {
      shards: (await stack.clients.kinesis.send(new ListShardsCommand({ StreamName: stack.names.stream })))
        .Shards,
    };
    expect(shards).toHaveLength(2);
    const record = { data: new TextEncoder().encode('hello'), partitionKey: 'p' };
    const { results } = await putRecordsReliably(stack.clients.kinesis, stack.names.stream, [record]);
    const { ShardIterator } = await stack.clients.kinesis.send(
      new GetShardIteratorCommand({
        StreamName: stack.names.stream,
        ShardId: results[0]!.shardId,
        ShardIteratorType: 'AT_SEQUENCE_NUMBER',
        StartingSequenceNumber: results[0]!.sequenceNumber,
      }),
    );
    const { Records = [] } = await stack.clients.kinesis.send(new GetRecordsCommand({ ShardIterator }));
    expect(new TextDecoder().decode(Records[0]!.Data)).toBe('hello');
  });

  it('enables TTL on the speed table', async () => {
    const ttl = await stack.clients.dynamodb.send(
      new DescribeTimeToLiveCommand({ TableName: stack.names.tables.speed }),
    );
    expect(ttl.TimeToLiveDescription?.AttributeName).toBe('expiresAt');
    expect(ttl.TimeToLiveDescription?.TimeToLiveStatus).toBe('ENABLED');
  });

  it('creates a bucket that stores objects', async () => {
    await stack.clients.s3.send(
      new PutObjectCommand({ Bucket: stack.names.bucket, Key: 'a/b.txt', Body: 'x' }),
    );
    const object = await stack.clients.s3.send(
      new GetObjectCommand({ Bucket: stack.names.bucket, Key: 'a/b.txt' }),
    );
    expect(await object.Body!.transformToString()).toBe('x');
  });

  it('provisions idempotently', async () => {
    await expect(provision(stack.clients, stack.names, { shards: 2 })).resolves.toBeUndefined();
  });
});
