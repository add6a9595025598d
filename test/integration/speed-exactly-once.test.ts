import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamRecord } from 'aws-lambda';
import { createSpeedHandler } from '../../lambdas/speed/handler.js';
import { DEFAULT_CELL_WRITE_LIMITS, type CellWriteLimits } from '../../shared/speed/cell-writer.js';
import type { SpeedMetric, SpeedObserver } from '../../shared/speed/speed-layer.js';
import { queryAll } from '../../shared/dynamodb.js';
import { DIMENSIONS as EVENT_DIMENSIONS, dimensionValue, EVENT_LIMITS } from '../../shared/event.js';
import { urlOfBytes } from '../../traffic/hostile.js';
import { valueDigest } from '../../shared/keys.js';
import {
  GENERATION_DIGITS,
  speedPartitionKey,
  VALUE_BUCKETS,
  valueBucket,
  valueEntryBytes,
} from '../../shared/speed/table.js';
import type { CountDimension } from '../../shared/counts.js';
import type { PageView } from '../../shared/event.js';
import { PageViewGenerator } from '../../traffic/generator.js';
import { PREFIXES, DEFAULT_SETTINGS } from '../../shared/resources.js';
import { createSpeedReader } from '../../shared/speed/reader.js';
import { HOUR_MS, hourBucket } from '../../shared/time.js';
import { truthCounts } from '../support/ground-truth.js';
import { KinesisRecordBuilder, kinesisEvent } from '../../local/kinesis-records.js';
import { testStack, type TestStack } from './support/stack.js';

const NOW = Date.now();
const START = hourBucket(NOW) - HOUR_MS;
/** Every counted dimension: the checks below cover each one. */
const DIMENSIONS: CountDimension[] = ['total', ...EVENT_DIMENSIONS];

function generated(count: number, seed: number, malformedFraction = 0, hostileFraction = 0, urlCount = 100) {
  const generator = new PageViewGenerator({
    seed,
    startMs: START + 10 * 60_000,
    rate: 20,
    malformedFraction,
    hostileFraction,
    urlCount,
  });
  return [...generator.take(count)];
}

/** Generated records as one shard's Kinesis records. */
function oneShard(source: ReturnType<typeof generated>) {
  const shard = new KinesisRecordBuilder();
  return { source, records: source.map((r) => shard.record(r.data, NOW)) };
}

/** Limits that make every cell a long chain of small updates over many generations. */
const SMALL: Partial<CellWriteLimits> = { valuesPerWrite: 4, itemSizeLimitBytes: 1024 };

/** The distinct events of generated records: a re-send (same eventId) is one page view. */
const distinctEvents = (records: ReturnType<typeof generated>) =>
  records.filter((r) => r.event && r.kind !== 'duplicate').map((r) => r.event!);

interface UpdateInput {
  Key: { pk: string; sk: string };
  ExpressionAttributeValues: Record<string, unknown>;
}

/** A document client whose UpdateItem calls fail for good when `refuse` says so (a permanent error). */
function refusingWrites(
  documents: DynamoDBDocumentClient,
  refuse: (input: UpdateInput) => boolean,
): DynamoDBDocumentClient {
  return new Proxy(documents, {
    get(target, property, receiver) {
      if (property !== 'send') return Reflect.get(target, property, receiver);
      return async (command: { constructor: { name: string }; input: UpdateInput }) => {
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

/**
 * A document client whose UpdateItem calls fail from the `failFrom`-th on while `faults.on`: a fault DynamoDB
 * Local cannot produce. With `applied`, the failing calls reach the table first and fail afterwards (a timeout
 * after the write landed): the writer cannot know whether they counted.
 */
function failingWrites(
  documents: DynamoDBDocumentClient,
  failFrom: number,
  faults = { on: true, applied: false },
): DynamoDBDocumentClient {
  let updates = 0;
  return new Proxy(documents, {
    get(target, property, receiver) {
      if (property !== 'send') return Reflect.get(target, property, receiver);
      return async (command: { constructor: { name: string } }) => {
        if (faults.on && command.constructor.name === 'UpdateCommand' && ++updates >= failFrom) {
          if (faults.applied) await target.send(command as never).catch(() => undefined);
          throw Object.assign(new Error('Throughput exceeds the current capacity'), {
            name: faults.applied ? 'TimeoutError' : 'ProvisionedThroughputExceededException',
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

  const handlerFor = (
    documents = stack.clients.documents,
    limits?: Partial<CellWriteLimits>,
    observer?: SpeedObserver,
  ) =>
    createSpeedHandler({
      clients: { documents, s3: stack.clients.s3 },
      config: stack.config,
      clock: () => NOW,
      retryBaseMs: 1,
      ...(limits ? { limits } : {}),
      ...(observer ? { observer } : {}),
    });

  /** Sums the metrics a handler reports. */
  const metrics = () => {
    const totals = new Map<string, number>();
    const observer: SpeedObserver = {
      count: (metric, value) => totals.set(metric, (totals.get(metric) ?? 0) + value),
    };
    return { observer, get: (metric: SpeedMetric) => totals.get(metric) ?? 0 };
  };

  /** The speed items of one dimension, as stored. */
  async function itemsOf(dimension: CountDimension) {
    const hours = [START, START + HOUR_MS, START + 2 * HOUR_MS];
    const items: Record<string, unknown>[] = [];
    for (const hourMs of hours) {
      items.push(
        ...(await queryAll(stack.clients.documents, {
          TableName: stack.config.names.tables.speed,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: {
            ':pk': speedPartitionKey(DEFAULT_SETTINGS.defaultSite, dimension, hourMs),
          },
        })),
      );
    }
    return items;
  }

  async function expectCountersToEqual(events: PageView[]) {
    const reader = createSpeedReader({
      documents: stack.clients.documents,
      tableName: stack.config.names.tables.speed,
      clock: () => NOW,
    });
    for (const dimension of DIMENSIONS) {
      for (const granularity of ['minute', 'hour'] as const) {
        const query = {
          site: DEFAULT_SETTINGS.defaultSite,
          dimension,
          fromMs: START,
          toMs: START + 3 * HOUR_MS,
          granularity,
        };
        expect(await reader.readCounts(query), `${dimension} by ${granularity}`).toEqual(
          truthCounts(events, dimension, granularity),
        );
      }
    }
    // Visitor sets are unions: a replayed, bisected or resumed batch adds no visitor.
    for (const dimension of ['total', 'url'] as const) {
      const query = {
        site: DEFAULT_SETTINGS.defaultSite,
        dimension,
        fromMs: START,
        toMs: START + 3 * HOUR_MS,
        granularity: 'hour' as const,
      };
      expect(await reader.readCounts({ ...query, visitors: true }), `${dimension} visitors`).toEqual(
        truthCounts(events, dimension, 'hour', { visitors: true }),
      );
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

  it.each([
    ['default limits', undefined, 3],
    ['small limits (many generations)', SMALL, 40],
  ] as const)(
    'reports the earliest unapplied record when writes fail, and a resume from there counts each record once (%s)',
    async (_, limits, failFrom) => {
      await fresh();
      const shard = new KinesisRecordBuilder();
      const source = generated(500, 3);
      const records = source.map((r) => shard.record(r.data, NOW));
      const response = await handlerFor(failingWrites(stack.clients.documents, failFrom), limits)(
        kinesisEvent(records),
        { getRemainingTimeInMillis: () => 60_000 },
      );
      expect(response.batchItemFailures).toHaveLength(1);
      const resumeAt = response.batchItemFailures[0]!.itemIdentifier;
      const index = records.findIndex((r) => r.kinesis.sequenceNumber === resumeAt);
      expect(index).toBeGreaterThanOrEqual(0);
      // The event source mapping redelivers from the reported record on.
      expect(await handlerFor(undefined, limits)(kinesisEvent(records.slice(index)))).toEqual({
        batchItemFailures: [],
      });
      await expectCountersToEqual(source.map((r) => r.event!));
    },
  );

  it.each([5, 17, 33, 61])(
    'resumes on the same warm handler after the %ith write failed, its cache possibly ahead of the table',
    async (failFrom) => {
      await fresh();
      const { source, records } = oneShard(generated(400, 9, 0, 0, 1000));
      const faults = { on: true, applied: false };
      const handler = handlerFor(failingWrites(stack.clients.documents, failFrom, faults), SMALL);
      const response = await handler(kinesisEvent(records), { getRemainingTimeInMillis: () => 60_000 });
      expect(response.batchItemFailures).toHaveLength(1);
      const index = records.findIndex(
        (r) => r.kinesis.sequenceNumber === response.batchItemFailures[0]!.itemIdentifier,
      );
      faults.on = false;
      expect(await handler(kinesisEvent(records.slice(index)))).toEqual({ batchItemFailures: [] });
      await expectCountersToEqual(source.map((r) => r.event!));
    },
  );

  it('counts once when writes land but their answers are lost (timeouts), whatever the cache says', async () => {
    await fresh();
    const { source, records } = oneShard(generated(400, 10, 0, 0, 1000));
    const faults = { on: true, applied: true };
    const handler = handlerFor(failingWrites(stack.clients.documents, 20, faults), SMALL);
    const response = await handler(kinesisEvent(records), { getRemainingTimeInMillis: () => 60_000 });
    expect(response.batchItemFailures).toHaveLength(1);
    faults.on = false;
    // The mapping retries the whole batch (no bisect), on this warm handler and on a cold one.
    expect(await handler(kinesisEvent(records))).toEqual({ batchItemFailures: [] });
    expect(await handlerFor(undefined, SMALL)(kinesisEvent(records))).toEqual({ batchItemFailures: [] });
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
    const poisoned = 'http://www.example.com/id=7';
    let attempts = 0;
    const refuse = (input: UpdateInput) =>
      Object.values(input.ExpressionAttributeValues).includes(poisoned) && ++attempts > 0;
    const response = await handlerFor(refusingWrites(stack.clients.documents, refuse), {
      valuesPerWrite: 8,
    })(kinesisEvent(records), { getRemainingTimeInMillis: () => 60_000 });
    expect(response).toEqual({ batchItemFailures: [] });
    const minutes = (rs: typeof source) => new Set(rs.map((r) => Math.floor(r.event!.created / 60_000)));
    const poisonedRecords = source.filter((r) => r.event!.url === poisoned);
    expect(poisonedRecords.length).toBeGreaterThan(3);
    // Never retried: one attempt per refused cell (the url cell of each minute the poisoned url is in).
    expect(attempts).toBe(minutes(poisonedRecords).size);

    const letters = await readDeadLetters(stack);
    const setAside = new Set(letters.map((l) => l.sequenceNumber));
    for (const letter of letters) {
      expect(letter.violation).toBe('write_rejected');
      expect(letter.reason).toContain('url counter write refused: ValidationException');
    }
    // Set aside: each refused url cell (the poisoned url's minute and value bucket) from its refused update on.
    const sequenceOf = (r: (typeof source)[number]) => records[source.indexOf(r)]!.kinesis.sequenceNumber;
    const bucketOf = (url: string) => valueBucket(valueDigest(url), VALUE_BUCKETS.url);
    for (const record of poisonedRecords) expect(setAside.has(sequenceOf(record))).toBe(true);
    for (const minute of minutes(poisonedRecords)) {
      const ofCell = source.filter(
        (r) =>
          Math.floor(r.event!.created / 60_000) === minute && bucketOf(r.event!.url) === bucketOf(poisoned),
      );
      const flags = ofCell.map((r) => setAside.has(sequenceOf(r)));
      expect(flags.indexOf(true)).toBeGreaterThanOrEqual(0);
      expect(flags.slice(flags.indexOf(true)).every(Boolean)).toBe(true);
    }
    expect(setAside.size).toBeLessThan(records.length);

    // Every other dimension counts every record; url counts exactly the records not set aside.
    const reader = createSpeedReader({
      documents: stack.clients.documents,
      tableName: stack.config.names.tables.speed,
      clock: () => NOW,
    });
    const events = source.map((r) => r.event!);
    const range = {
      site: DEFAULT_SETTINGS.defaultSite,
      fromMs: START,
      toMs: START + 3 * HOUR_MS,
      granularity: 'hour',
    } as const;
    expect(await reader.readCounts({ dimension: 'url', ...range })).toEqual(
      truthCounts(
        source.filter((r) => !setAside.has(sequenceOf(r))).map((r) => r.event!),
        'url',
        'hour',
      ),
    );
    for (const dimension of ['total', 'country', 'browser', 'status'] as const) {
      expect(await reader.readCounts({ dimension, ...range })).toEqual(
        truthCounts(events, dimension, 'hour'),
      );
    }
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

  it('rolls a cell over many generations and still counts a replay and a resumed half once', async () => {
    await fresh();
    const { source, records } = oneShard(generated(600, 11, 0, 0, 10_000));
    const seen = metrics();
    const first = handlerFor(undefined, SMALL, seen.observer);
    expect(await first(kinesisEvent(records.slice(0, 560)))).toEqual({ batchItemFailures: [] });
    // The next batch lands on a new instance (cold cache): it must find the newest generation, not write to
    // the first one because its records are above that one's high-water.
    const second = handlerFor(undefined, SMALL, seen.observer);
    expect(await second(kinesisEvent(records.slice(560)))).toEqual({ batchItemFailures: [] });
    expect(seen.get('GenerationRolls')).toBeGreaterThan(20);
    // Replayed whole on a cold handler, the second half on the warm one (its cache is past every record), the
    // first half on the instance that wrote it.
    expect(await handlerFor(undefined, SMALL)(kinesisEvent(records))).toEqual({ batchItemFailures: [] });
    expect(await second(kinesisEvent(records.slice(560)))).toEqual({ batchItemFailures: [] });
    expect(await first(kinesisEvent(records.slice(0, 560)))).toEqual({ batchItemFailures: [] });
    await expectCountersToEqual(source.map((r) => r.event!));

    const urlItems = await itemsOf('url');
    const generations = urlItems.map((item) => Number(String(item.sk).slice(-GENERATION_DIGITS)));
    expect(Math.max(...generations)).toBeGreaterThan(5);
    for (const item of urlItems) {
      // Rolled at the limit: no item got more than one update past it.
      expect(item.sz as number).toBeLessThan(1024 + 4 * valueEntryBytes(2048));
    }
  });

  it('writes a cell as several updates when it has many values, and counts a replay and a bisection once', async () => {
    await fresh();
    const { source, records } = oneShard(generated(300, 12, 0, 0, 10_000));
    const seen = metrics();
    const limits = { valuesPerWrite: 5, itemSizeLimitBytes: 64 * 1024 };
    const handler = handlerFor(undefined, limits, seen.observer);
    expect(await handler(kinesisEvent(records))).toEqual({ batchItemFailures: [] });
    const distinctUrls = new Set(source.map((r) => r.event!.url)).size;
    expect(seen.get('CellWrites')).toBeGreaterThanOrEqual(distinctUrls / 5);
    expect(seen.get('GenerationRolls')).toBe(0);
    await handlerFor(undefined, limits)(kinesisEvent(records));
    await handlerFor(undefined, limits)(kinesisEvent(records.slice(0, 150)));
    await handlerFor(undefined, limits)(kinesisEvent(records.slice(150)));
    await expectCountersToEqual(source.map((r) => r.event!));
    // One item per (minute, value bucket) here, the size limit being high: the values live inside it.
    const buckets = new Set(
      source.map(
        (r) =>
          `${Math.floor(r.event!.created / 60_000)}#${valueBucket(valueDigest(r.event!.url), VALUE_BUCKETS.url)}`,
      ),
    );
    expect(await itemsOf('url')).toHaveLength(buckets.size);
  });

  it('writes as many of the longest urls of every UTF-8 width as one update takes, in one update', async () => {
    await fresh();
    const shard = new KinesisRecordBuilder();
    const k = DEFAULT_CELL_WRITE_LIMITS.valuesPerWrite;
    // k distinct urls at the byte limit that share a value bucket, so that they form one update.
    const urls: string[] = [];
    for (let i = 0; urls.length < k; i += 1) {
      const url = urlOfBytes(EVENT_LIMITS.maxUrlBytes, ((i % 4) + 1) as 1 | 2 | 3 | 4, `/${i}/`);
      if (valueBucket(valueDigest(url), VALUE_BUCKETS.url) === 0) urls.push(url);
    }
    const events = generated(k, 13).map((r, i) => ({ ...r.event!, url: urls[i]! }));
    const records = events.map((event) => shard.record(event, NOW));
    const seen = metrics();
    expect(await handlerFor(undefined, undefined, seen.observer)(kinesisEvent(records))).toEqual({
      batchItemFailures: [],
    });
    expect(await readDeadLetters(stack)).toEqual([]);
    await expectCountersToEqual(events);
    // One minute: one update of k urls, and one update for the total and for each value bucket that the other
    // dimensions' values of these events fall in.
    expect(new Set(events.map((e) => Math.floor(e.created / 60_000))).size).toBe(1);
    const otherBuckets = new Set(
      EVENT_DIMENSIONS.filter((d) => d !== 'url').flatMap((d) =>
        events.map((e) => `${d}/${valueBucket(valueDigest(dimensionValue(e, d)), VALUE_BUCKETS[d])}`),
      ),
    );
    expect(seen.get('CellWrites')).toBe(1 + 1 + otherBuckets.size);
  });
});
