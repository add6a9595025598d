import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  type _Record,
  type ShardIteratorType,
} from '@aws-sdk/client-kinesis';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { padSequence } from '../../shared/speed/table.js';
import { expectSequenceNumber } from './support/kinesis-contract.js';
import { testStack, type TestStack } from './support/stack.js';

/**
 * What the code relies on in Kinesis sequence numbers, checked on whichever Kinesis the run uses
 * (kinesis-local, or one endpoint such as LocalStack or moto). The event source mapping's checkpoint and the
 * speed layer's per-shard high-water compare them, zero-padded, as numbers (padSequence).
 */
describe('Kinesis sequence numbers, as the code relies on them', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await testStack('kinesis-contract', { shards: 2 });
  });
  afterAll(() => stack.destroy());

  async function readShard(shardId: string, type: ShardIteratorType, after?: string): Promise<_Record[]> {
    const { ShardIterator } = await stack.clients.kinesis.send(
      new GetShardIteratorCommand({
        StreamName: stack.names.stream,
        ShardId: shardId,
        ShardIteratorType: type,
        StartingSequenceNumber: after,
      }),
    );
    const records: _Record[] = [];
    for (let iterator = ShardIterator; iterator;) {
      const page = await stack.clients.kinesis.send(new GetRecordsCommand({ ShardIterator: iterator }));
      records.push(...(page.Records ?? []));
      if ((page.Records ?? []).length === 0) break;
      iterator = page.NextShardIterator;
    }
    return records;
  }

  it('are decimal strings that a shard returns in increasing numeric order, the order of their padded form', async () => {
    const puts = [];
    // Several calls, so that numbers grow past a power of ten on emulators that count from 1.
    for (let call = 0; call < 4; call += 1) {
      const records = Array.from({ length: 30 }, (_, i) => ({
        data: Buffer.from(`call ${call} record ${i}`),
        partitionKey: `key-${call}-${i}`,
      }));
      puts.push(...(await putRecordsReliably(stack.clients.kinesis, stack.names.stream, records)).results);
    }
    for (const put of puts) expectSequenceNumber(put.sequenceNumber);

    const { Shards } = await stack.clients.kinesis.send(
      new ListShardsCommand({ StreamName: stack.names.stream }),
    );
    expect(Shards).toHaveLength(2);
    const read: string[] = [];
    for (const { ShardId, SequenceNumberRange } of Shards!) {
      expectSequenceNumber(SequenceNumberRange?.StartingSequenceNumber);
      const numbers = (await readShard(ShardId!, 'TRIM_HORIZON')).map((r) => r.SequenceNumber!);
      read.push(...numbers.map((n) => `${ShardId}/${n}`));
      for (const n of numbers) expectSequenceNumber(n);
      // "Reading data records sequentially" (GetShardIterator): each after the one before, as a number.
      for (let i = 1; i < numbers.length; i += 1)
        expect(BigInt(numbers[i]!)).toBeGreaterThan(BigInt(numbers[i - 1]!));
      expect([...numbers].sort((a, b) => (padSequence(a) < padSequence(b) ? -1 : 1))).toEqual(numbers);

      // The checkpoint: an iterator after a record's number resumes with exactly the records after it.
      const middle = Math.floor(numbers.length / 2);
      const resumed = await readShard(ShardId!, 'AFTER_SEQUENCE_NUMBER', numbers[middle]);
      expect(resumed.map((r) => r.SequenceNumber)).toEqual(numbers.slice(middle + 1));
    }
    // Every record was read once, under the shard and number its put returned.
    expect(read.sort()).toEqual(puts.map((p) => `${p.shardId}/${p.sequenceNumber}`).sort());
  });
});
