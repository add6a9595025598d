import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { KinesisStreamRecord } from 'aws-lambda';
import { aggregateBatch } from '../lambdas/speed/aggregate.js';
import { processSpeedBatch, type SpeedDeps } from '../lambdas/speed/speed-layer.js';
import { createAwsClients } from '../shared/aws-clients.js';
import { decodeBase64PageView, dimensionValue, DIMENSIONS } from '../shared/event.js';
import { PageViewGenerator } from '../shared/generator.js';
import { resourceNames } from '../shared/resources.js';
import { minuteBucket } from '../shared/time.js';
import { startEmulators } from '../local/emulators.js';
import { KinesisRecordBuilder } from '../local/kinesis-records.js';
import { provision } from '../local/provision.js';
import { percentile } from './stats.js';
import type { BenchFigure, BenchSection } from './types.js';
import { benchMain } from './cli.js';

/**
 * Speed layer: the aggregate-then-write handler against a naive handler that issues one UpdateItem per event,
 * both on 10,000-record batches from the generator's default distribution, both writing to a counting sink.
 */

const BATCH = 10_000;

/** A stand-in DynamoDB client that only counts what it is sent. */
function countingSink(): { client: DynamoDBDocumentClient; sent: () => number } {
  let sent = 0;
  const client = { send: async () => ((sent += 1), {}) } as unknown as DynamoDBDocumentClient;
  return { client, sent: () => sent };
}

function batches(count: number): KinesisStreamRecord[][] {
  const now = Date.now();
  // One shard's worth of traffic: 1,000 records/s, the per-shard write limit.
  const generator = new PageViewGenerator({ seed: 7, startMs: now - 10 * 60_000, rate: 1000 });
  const shard = new KinesisRecordBuilder();
  return Array.from({ length: count }, () =>
    [...generator.take(BATCH)].map((r) => shard.record(r.data, now)),
  );
}

/** The naive handler: per event, decode, validate and one UpdateItem adding to five counters of its minute. */
async function naiveHandler(
  records: readonly KinesisStreamRecord[],
  documents: DynamoDBDocumentClient,
  table: string,
) {
  for (const record of records) {
    const result = decodeBase64PageView(
      record.kinesis.data,
      record.kinesis.approximateArrivalTimestamp * 1000,
    );
    if (!result.ok) continue;
    const names: Record<string, string> = { '#total': 'total' };
    for (const dimension of DIMENSIONS)
      names[`#${dimension}`] = `${dimension}=${dimensionValue(result.event, dimension)}`;
    await documents.send(
      new UpdateCommand({
        TableName: table,
        Key: { pk: `naive#${minuteBucket(result.event.created)}`, sk: '-' },
        UpdateExpression: `ADD ${Object.keys(names)
          .map((n) => `${n} :one`)
          .join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ':one': 1 },
      }),
    );
  }
}

/** The batch with every record's eventId removed (re-encoded, so the payload is what a producer without ids sends). */
function withoutEventIds(batch: readonly KinesisStreamRecord[]): KinesisStreamRecord[] {
  return batch.map((record) => {
    const event = JSON.parse(Buffer.from(record.kinesis.data, 'base64').toString('utf8')) as Record<
      string,
      unknown
    >;
    delete event.eventId;
    return {
      ...record,
      kinesis: { ...record.kinesis, data: Buffer.from(JSON.stringify(event)).toString('base64') },
    };
  });
}

/** CPU seconds (user + system) that `work` takes. */
async function cpuSeconds(work: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  await work();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}

const s3Sink = { send: async () => ({}) } as unknown as S3Client;

export const speedBench: BenchSection = async ({ quick, log }) => {
  const rounds = quick ? 9 : 25;
  log(`speed: generating ${rounds} batches of ${BATCH} records`);
  const work = batches(rounds + 1);
  const warm = work.pop()!;
  const deps = (documents: DynamoDBDocumentClient): SpeedDeps => ({
    documents,
    s3: s3Sink,
    tableName: 'bench',
    bucket: 'bench',
    retentionHours: 48,
    clock: Date.now,
  });

  // Warm every path up so that JIT compilation is not measured.
  for (let i = 0; i < 3; i += 1) {
    aggregateBatch(warm, Date.now(), 48);
    await processSpeedBatch(warm, deps(countingSink().client));
    await naiveHandler(warm, countingSink().client, 'bench');
  }

  // Each path is timed per batch and reported as the median batch, so that one garbage collection or a
  // busy neighbour does not decide the figure; the three paths take turns on every batch.
  const ours = countingSink();
  const naive = countingSink();
  const aggregateOnly: number[] = [];
  // The same batches without eventIds: what in-batch deduplication of producer re-sends costs.
  const withoutIds = work.map(withoutEventIds);
  const aggregateNoIds: number[] = [];
  const oursCpu: number[] = [];
  const naiveCpu: number[] = [];
  for (const [i, batch] of work.entries()) {
    aggregateOnly.push(await cpuSeconds(async () => void aggregateBatch(batch, Date.now(), 48)));
    aggregateNoIds.push(await cpuSeconds(async () => void aggregateBatch(withoutIds[i]!, Date.now(), 48)));
    oursCpu.push(await cpuSeconds(async () => void (await processSpeedBatch(batch, deps(ours.client)))));
    naiveCpu.push(await cpuSeconds(() => naiveHandler(batch, naive.client, 'bench')));
  }

  const records = rounds * BATCH;
  const perSecond = (cpu: number[]) => BATCH / percentile(cpu, 50);
  const figures: BenchFigure[] = [
    {
      section: 'speed',
      metric: 'decode+validate+aggregate, records/s per core',
      value: Math.round(perSecond(aggregateOnly)),
      unit: 'records/s',
      note: `CPU time, median of ${rounds} batches of ${BATCH}`,
    },
    {
      section: 'speed',
      metric: 'decode+validate+aggregate with eventIds (re-sends removed in the batch), records/s per core',
      value: Math.round(perSecond(aggregateOnly)),
      unit: 'records/s',
      baseline: Math.round(perSecond(aggregateNoIds)),
      ratio: perSecond(aggregateOnly) / perSecond(aggregateNoIds),
      note: 'baseline: the same batches without eventIds; ratio < 1 is the cost of deduplication (writes per record are unchanged)',
    },
    {
      section: 'speed',
      metric: 'whole handler to a counting sink, records/s per core',
      value: Math.round(perSecond(oursCpu)),
      unit: 'records/s',
      baseline: Math.round(perSecond(naiveCpu)),
      ratio: perSecond(oursCpu) / perSecond(naiveCpu),
      note: `baseline: naive handler, one UpdateItem per event; median of ${rounds} batches; ratio = ours / naive throughput`,
    },
    {
      section: 'speed',
      metric: 'DynamoDB writes per record',
      value: ours.sent() / records,
      unit: 'writes',
      baseline: naive.sent() / records,
      ratio: naive.sent() / ours.sent(),
      note: 'ratio = naive / ours (fewer is better)',
    },
  ];

  log('speed: starting DynamoDB Local for the wall-time figures');
  const emulators = await startEmulators();
  try {
    const clients = createAwsClients(emulators);
    const names = resourceNames('bench-speed');
    await provision(clients, names, { shards: 1 });
    const real = {
      ...deps(clients.documents),
      tableName: names.tables.speed,
      s3: clients.s3,
      bucket: names.bucket,
    };
    const started = performance.now();
    const response = await processSpeedBatch(work[0]!, real);
    const oursMs = performance.now() - started;
    if (response.batchItemFailures.length > 0)
      throw new Error('the speed handler reported failures against DynamoDB Local');
    const naiveRecords = quick ? 1000 : 3000;
    const naiveStarted = performance.now();
    await naiveHandler(work[1]!.slice(0, naiveRecords), clients.documents, names.tables.speed);
    const naiveMs = ((performance.now() - naiveStarted) / naiveRecords) * BATCH;
    figures.push({
      section: 'speed',
      metric: `wall time of one ${BATCH}-record batch on DynamoDB Local`,
      value: Math.round(oursMs),
      unit: 'ms',
      baseline: Math.round(naiveMs),
      ratio: naiveMs / oursMs,
      note: `baseline measured on ${naiveRecords} records and scaled to ${BATCH}; ratio = naive / ours`,
    });
    clients.destroy();
  } finally {
    await emulators.stop();
  }
  return figures;
};

benchMain(import.meta.url, speedBench);
