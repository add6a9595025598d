import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamRecord } from 'aws-lambda';
import { createSpeedHandler } from '../../lambdas/speed/handler.js';
import type { CountDimension } from '../../shared/counts.js';
import type { PageView } from '../../shared/event.js';
import { PageViewGenerator } from '../../shared/generator.js';
import { PREFIXES } from '../../shared/resources.js';
import { createSpeedReader } from '../../shared/speed/reader.js';
import { HOUR_MS, hourBucket } from '../../shared/time.js';
import { truthCounts } from '../support/ground-truth.js';
import { KinesisRecordBuilder, kinesisEvent } from '../../local/kinesis-records.js';
import { testStack, type TestStack } from './support/stack.js';

const NOW = Date.now();
const START = hourBucket(NOW) - HOUR_MS;
const DIMENSIONS: CountDimension[] = ['total', 'url', 'country', 'browser', 'status'];

function generated(count: number, seed: number, malformedFraction = 0, hostileFraction = 0) {
  const generator = new PageViewGenerator({
    seed,
    startMs: START + 10 * 60_000,
    rate: 20,
    malformedFraction,
    hostileFraction,
  });
  return [...generator.take(count)];
}

/** The distinct events of generated records: a re-send (same eventId) is one page view. */
const distinctEvents = (records: ReturnType<typeof generated>) =>
  records.filter((r) => r.event && r.kind !== 'duplicate').map((r) => r.event!);

/** A document client whose UpdateItem calls fail for good when `refuse` says so (a permanent error). */
function refusingWrites(
  documents: DynamoDBDocumentClient,
  refuse: (input: { Key: { sk: string } }) => boolean,
): DynamoDBDocumentClient {
  return new Proxy(documents, {
    get(target, property, receiver) {
      if (property !== 'send') return Reflect.get(target, property, receiver);
      return async (command: { constructor: { name: string }; input: { Key: { sk: string } } }) => {
        if (command.constructor.name === 'UpdateCommand' && refuse(command.input)) {
          throw Object.assign(new Error('Item size has exceeded the maximum allowed size'), {
            name: 'ValidationException',
            $fault: 'client',
            $metadata: { httpStatusCode: 400 },
          });
        }
        return target.send(command as never);
      };
    },
  });
}

async function readDeadLetters(stack: TestStack) {
  const listed = await stack.clients.s3.send(
    new ListObjectsV2Command({ Bucket: stack.names.bucket, Prefix: PREFIXES.deadLetter }),
  );
  const lines: { violation: string; reason: string; data: string; sequenceNumber: string }[] = [];
  for (const object of listed.Contents ?? []) {
    const body = await stack.clients.s3.send(
      new GetObjectCommand({ Bucket: stack.names.bucket, Key: object.Key }),
    );
    lines.push(
      ...(await body.Body!.transformToString())
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line)),
    );
  }
  return lines;
}

/** A document client whose UpdateItem calls fail from the `failFrom`-th on: a fault DynamoDB Local cannot produce. */
function failingWrites(documents: DynamoDBDocumentClient, failFrom: number): DynamoDBDocumentClient {
  let updates = 0;
  return new Proxy(documents, {
    get(target, property, receiver) {
      if (property !== 'send') return Reflect.get(target, property, receiver);
      return async (command: { constructor: { name: string } }) => {
        if (command.constructor.name === 'UpdateCommand' && ++updates >= failFrom) {
          throw Object.assign(new Error('Throughput exceeds the current capacity'), {
            name: 'ProvisionedThroughputExceededException',
          });
        }
        return target.send(command as never);
      };
    },
  });
}

describe('speed layer: exactly-once counters on at-least-once delivery', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await testStack('speed');
  });
  afterAll(() => stack.destroy());

  const handlerFor = (documents = stack.clients.documents) =>
    createSpeedHandler({
      clients: { documents, s3: stack.clients.s3 },
      config: stack.config,
      clock: () => NOW,
      retryBaseMs: 1,
    });

  async function expectCountersToEqual(events: PageView[]) {
    const reader = createSpeedReader({
      documents: stack.clients.documents,
      tableName: stack.config.names.tables.speed,
      clock: () => NOW,
    });
    for (const dimension of DIMENSIONS) {
      for (const granularity of ['minute', 'hour'] as const) {
        const query = { dimension, fromMs: START, toMs: START + 3 * HOUR_MS, granularity };
        expect(await reader.readCounts(query), `${dimension} by ${granularity}`).toEqual(
          truthCounts(events, dimension, granularity),
        );
      }
    }
  }

  async function fresh(): Promise<void> {
    stack.destroy();
    stack = await testStack('speed');
  }

  it('counts a batch replayed twice once', async () => {
    await fresh();
    const shard = new KinesisRecordBuilder();
    const records = generated(400, 1).map((r) => shard.record(r.data, NOW));
    const handler = handlerFor();
    expect(await handler(kinesisEvent(records))).toEqual({ batchItemFailures: [] });
    expect(await handler(kinesisEvent(records))).toEqual({ batchItemFailures: [] });
    await expectCountersToEqual(generated(400, 1).map((r) => r.event!));
  });

  it('counts a bisected batch once: the whole batch, then each half again', async () => {
    await fresh();
    const shard = new KinesisRecordBuilder();
    const records = generated(300, 2).map((r) => shard.record(r.data, NOW));
    const handler = handlerFor();
    await handler(kinesisEvent(records));
    await handler(kinesisEvent(records.slice(0, 150)));
    await handler(kinesisEvent(records.slice(150)));
    await expectCountersToEqual(generated(300, 2).map((r) => r.event!));
  });

  it('reports the earliest unapplied record when writes fail, and a resume from there counts each record once', async () => {
    await fresh();
    const shard = new KinesisRecordBuilder();
    const source = generated(500, 3);
    const records = source.map((r) => shard.record(r.data, NOW));
    const response = await handlerFor(failingWrites(stack.clients.documents, 40))(kinesisEvent(records), {
      getRemainingTimeInMillis: () => 60_000,
    });
    expect(response.batchItemFailures).toHaveLength(1);
    const resumeAt = response.batchItemFailures[0]!.itemIdentifier;
    const index = records.findIndex((r) => r.kinesis.sequenceNumber === resumeAt);
    expect(index).toBeGreaterThanOrEqual(0);
    // The event source mapping redelivers from the reported record on.
    expect(await handlerFor()(kinesisEvent(records.slice(index)))).toEqual({ batchItemFailures: [] });
    await expectCountersToEqual(source.map((r) => r.event!));
  });

  it('adds up two shards writing the same cells concurrently', async () => {
    await fresh();
    const a = new KinesisRecordBuilder('shardId-000000000000');
    const b = new KinesisRecordBuilder(
      'shardId-000000000001',
      49_658_238_466_420_853_012_373_104_850_000_000_000_000_000_000_000_000n,
    );
    const source = generated(400, 4);
    const first: KinesisStreamRecord[] = [];
    const second: KinesisStreamRecord[] = [];
    source.forEach((r, i) =>
      i % 2 ? second.push(b.record(r.data, NOW)) : first.push(a.record(r.data, NOW)),
    );
    const handler = handlerFor();
    await Promise.all([handler(kinesisEvent(first)), handler(kinesisEvent(second))]);
    await handler(kinesisEvent(second)); // one shard's batch redelivered
    await expectCountersToEqual(source.map((r) => r.event!));
  });

  it('keeps poison records in the dead-letter store with their reason and counts the rest', async () => {
    await fresh();
    const shard = new KinesisRecordBuilder();
    const source = generated(400, 5, 0.1);
    const records = source.map((r) => shard.record(r.data, NOW));
    expect(await handlerFor()(kinesisEvent(records))).toEqual({ batchItemFailures: [] });
    await expectCountersToEqual(source.filter((r) => r.event).map((r) => r.event!));

    const lines = await readDeadLetters(stack);
    const malformed = source.map((r, i) => [r, records[i]!] as const).filter(([r]) => r.kind === 'malformed');
    expect(malformed.length).toBeGreaterThan(20);
    expect(lines.map((l) => [l.sequenceNumber, l.violation])).toEqual(
      malformed.map(([r, record]) => [record.kinesis.sequenceNumber, r.malformation]),
    );
    for (const [line, [, record]] of lines.map((l, i) => [l, malformed[i]!] as const)) {
      expect(line.data).toBe(record.kinesis.data);
      expect(line.reason.length).toBeGreaterThan(0);
    }
  });

  it('counts hostile values whole: urls at the byte limit in every UTF-8 width, odd characters, edge values', async () => {
    await fresh();
    const shard = new KinesisRecordBuilder();
    const source = generated(600, 6, 0, 0.5);
    const records = source.map((r) => shard.record(r.data, NOW));
    const handler = handlerFor();
    expect(await handler(kinesisEvent(records))).toEqual({ batchItemFailures: [] });
    // Re-sends inside one batch are one page view; the batch layer does the same across batches.
    await expectCountersToEqual(distinctEvents(source));
    const invalid = source.filter((r) => r.malformation);
    expect(invalid.length).toBeGreaterThan(50);
    expect((await readDeadLetters(stack)).map((l) => l.violation).sort()).toEqual(
      invalid.map((r) => r.malformation).sort(),
    );
  });

  it('sets aside the records of a write refused for good and lets the shard go on', async () => {
    await fresh();
    const shard = new KinesisRecordBuilder();
    const source = generated(300, 7);
    const records = source.map((r) => shard.record(r.data, NOW));
    const poisoned = 'http://www.example.com/id=2';
    const refuse = (input: { Key: { sk: string } }) => input.Key.sk.includes(`#${poisoned}#`);
    let attempts = 0;
    const response = await handlerFor(
      refusingWrites(stack.clients.documents, (input) => refuse(input) && ++attempts > 0),
    )(kinesisEvent(records), { getRemainingTimeInMillis: () => 60_000 });
    expect(response).toEqual({ batchItemFailures: [] });
    const refusedCells = new Set(
      source.filter((r) => r.event!.url === poisoned).map((r) => Math.floor(r.event!.created / 60_000)),
    ).size;
    // Never retried: one attempt per refused cell (one per minute of that url).
    expect(attempts).toBe(refusedCells);
    const letters = await readDeadLetters(stack);
    const expected = source
      .map((r, i) => [r, records[i]!] as const)
      .filter(([r]) => r.event!.url === poisoned)
      .map(([, record]) => record.kinesis.sequenceNumber);
    expect(expected.length).toBeGreaterThan(5);
    expect(letters.map((l) => l.sequenceNumber)).toEqual(expected);
    for (const letter of letters) {
      expect(letter.violation).toBe('write_rejected');
      expect(letter.reason).toContain('ValidationException');
    }
    const reader = createSpeedReader({
      documents: stack.clients.documents,
      tableName: stack.config.names.tables.speed,
      clock: () => NOW,
    });
    const byUrl = await reader.readCounts({
      dimension: 'url',
      fromMs: START,
      toMs: START + 3 * HOUR_MS,
      granularity: 'hour',
    });
    const events = source.map((r) => r.event!);
    expect(byUrl).toEqual(
      truthCounts(
        events.filter((e) => e.url !== poisoned),
        'url',
        'hour',
      ),
    );
  });

  it('sends every record to the dead-letter store when the table is missing, without retrying', async () => {
    await fresh();
    const shard = new KinesisRecordBuilder();
    const source = generated(50, 8);
    const records = source.map((r) => shard.record(r.data, NOW));
    const config = {
      ...stack.config,
      names: { ...stack.config.names, tables: { ...stack.config.names.tables, speed: 'no-such-table' } },
    };
    let sends = 0;
    const counting = new Proxy(stack.clients.documents, {
      get(target, property, receiver) {
        if (property !== 'send') return Reflect.get(target, property, receiver);
        return (command: never) => {
          sends += 1;
          return target.send(command);
        };
      },
    });
    const handler = createSpeedHandler({
      clients: { documents: counting, s3: stack.clients.s3 },
      config,
      clock: () => NOW,
      retryBaseMs: 1,
    });
    expect(await handler(kinesisEvent(records))).toEqual({ batchItemFailures: [] });
    const letters = await readDeadLetters(stack);
    expect(letters.map((l) => l.sequenceNumber)).toEqual(records.map((r) => r.kinesis.sequenceNumber));
    expect(letters[0]!.reason).toContain('ResourceNotFoundException');
    // One attempt per cell, no retries.
    expect(sends).toBeLessThanOrEqual(records.length * 5);
  });
});
