import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamRecord } from 'aws-lambda';
import { DIMENSIONS } from '../shared/event.js';
import { aggregateBatch } from '../shared/speed/aggregate.js';
import { GenerationCache } from '../shared/speed/cell-writer.js';
import { processSpeedBatch, type SpeedObserver } from '../shared/speed/speed-layer.js';
import { createAwsClients } from '../shared/aws-clients.js';
import { resourceNames } from '../shared/resources.js';
import { startEmulators } from '../local/emulators.js';
import { provision } from '../local/provision.js';
import { naiveHandler } from './baseline/naive-speed-handler.js';
import { previousDesign } from './baseline/previous-speed-design.js';
import { benchMain } from './support/cli.js';
import { LAMBDA_BATCHES, shardTraffic } from './support/shard-traffic.js';
import { currentDesign, speedSinkDeps } from './support/speed-design.js';
import { chunks, cpuSeconds, percentile } from './support/stats.js';
import type { BenchFigure, BenchSection } from './support/types.js';

/**
 * Speed layer: the aggregate-then-write handler against a naive handler that issues one UpdateItem per event,
 * both on 10,000-record batches from the generator's default distribution, both writing to a counting sink;
 * then a cardinality axis (distinct urls per day × Lambda batch size) of writes and write units per record,
 * beside the naive design and the previous one (one item per minute, value and shard, one write per cell).
 */

const BATCH = 10_000;
/** What the speed layer counted before the sources issue added referrer, source, utm_*, device and os. */
const DIMENSIONS_BEFORE_SOURCES = ['total', 'url', 'country', 'browser', 'status'] as const;
const URLS_PER_DAY = [100, 10_000, 100_000, 1_000_000] as const;

/** A stand-in DynamoDB client that only counts what it is sent. */
function countingSink(): { client: DynamoDBDocumentClient; sent: () => number } {
  let sent = 0;
  const client = { send: async () => ((sent += 1), {}) } as unknown as DynamoDBDocumentClient;
  return { client, sent: () => sent };
}

const batches = (count: number): KinesisStreamRecord[][] => chunks(shardTraffic(count * BATCH), BATCH);

/** Writes and write units per record along distinct urls per day and the Lambda batch size. */
async function cardinalityAxis(records: number, log: (line: string) => void): Promise<BenchFigure[]> {
  const figures: BenchFigure[] = [];
  const fmt = (n: number) => n.toPrecision(3);
  for (const urls of URLS_PER_DAY) {
    log(`speed: ${records} records over ${urls.toLocaleString('en-US')} urls`);
    const traffic = shardTraffic(records, urls);
    const label = `${urls.toLocaleString('en-US')} urls/day`;
    for (const size of LAMBDA_BATCHES) {
      const lambdaBatches = chunks(traffic, size);
      const ours = await currentDesign(lambdaBatches);
      const countsOnly = await currentDesign(lambdaBatches, { visitors: false });
      const previous = previousDesign(lambdaBatches, Date.now());
      const at = `at ${label}, ${size}-record batches`;
      const naive = { section: 'speed', baseline: 1 } as const;
      figures.push(
        {
          ...naive,
          metric: `speed writes per record ${at}`,
          value: ours.writes / records,
          unit: 'writes',
          ratio: records / ours.writes,
          note: `baseline: naive, one write per event; previous design (one write per cell): ${fmt(previous.writes / records)}; ratio = naive / ours`,
        },
        {
          ...naive,
          metric: `speed write units per record ${at}`,
          value: ours.writeUnits / records,
          unit: 'WCU',
          ratio: records / ours.writeUnits,
          note: `baseline: naive, at least 1 WCU per event; previous design: ${fmt(previous.writeUnits / records)}; DynamoDB's 1 KB rounding of each item`,
        },
        {
          ...naive,
          metric: `previous design (one write per cell): speed writes per record ${at}`,
          value: previous.writes / records,
          unit: 'writes',
          ratio: records / previous.writes,
          note: 'one item per (minute, dimension, value, shard); ratio = naive / previous',
        },
        {
          ...naive,
          metric: `previous design (one write per cell): speed write units per record ${at}`,
          value: previous.writeUnits / records,
          unit: 'WCU',
          ratio: records / previous.writeUnits,
          note: 'baseline: naive, at least 1 WCU per event',
        },
      );
      figures.push({
        section: 'speed',
        metric: `speed write units per record with visitor sets ${at}`,
        value: ours.writeUnits / records,
        unit: 'WCU',
        baseline: countsOnly.writeUnits / records,
        ratio: ours.writeUnits / countsOnly.writeUnits,
        note:
          `baseline: the same items without visitor sets (counts and errors only); writes per record ` +
          `${fmt(ours.writes / records)} vs ${fmt(countsOnly.writes / records)}; ratio = with / without (the cost of visitors)`,
      });
      if (size === 1000 && urls === 100_000) {
        // The sources issue's dimensions, beside the ones before it, from the very same traffic (counters alone).
        const counters = await currentDesign(lambdaBatches, { rollups: false });
        const before = await currentDesign(lambdaBatches, {
          dimensions: DIMENSIONS_BEFORE_SOURCES,
          rollups: false,
        });
        figures.push({
          section: 'speed',
          metric: `speed write units per record with the sources' dimensions ${at}`,
          value: counters.writeUnits / records,
          unit: 'WCU',
          baseline: before.writeUnits / records,
          ratio: counters.writeUnits / before.writeUnits,
          note:
            `${DIMENSIONS.length} dimensions and the total; baseline: the same cells of the ${DIMENSIONS_BEFORE_SOURCES.length - 1} ` +
            `dimensions and the total before (${DIMENSIONS_BEFORE_SOURCES.join(', ')}); writes per record ` +
            `${fmt(counters.writes / records)} vs ${fmt(before.writes / records)}; the bound is 1.5×`,
        });
        // What filters need: the rollup blocks beside the counters (docs/filters.md), from the very same traffic.
        figures.push({
          section: 'speed',
          metric: `speed write units per record with rollup blocks for filters ${at}`,
          value: ours.writeUnits / records,
          unit: 'WCU',
          baseline: counters.writeUnits / records,
          ratio: ours.writeUnits / counters.writeUnits,
          note:
            `baseline: the counters alone (the unfiltered layout); rollup bytes stored per record ` +
            `${fmt((ours.allBytes! - counters.allBytes!) / records)}; writes per record ${fmt(ours.writes / records)} vs ` +
            `${fmt(counters.writes / records)}; the bound is 1.5×`,
        });
      }
      if (size === 1000) {
        figures.push({
          section: 'speed',
          metric: `speed bytes stored per 1,000 records with visitor sets at ${label}`,
          value: Math.round((ours.allBytes! / records) * 1000),
          unit: 'bytes',
          baseline: Math.round((countsOnly.allBytes! / records) * 1000),
          ratio: ours.allBytes! / countsOnly.allBytes!,
          note: 'all dimensions; what reading those minutes costs (a read unit per 4 KB); baseline: without visitor sets; ratio = with / without',
        });
        figures.push({
          section: 'speed',
          metric: `url counter bytes stored per 1,000 records at ${label}`,
          value: Math.round((ours.urlBytes / records) * 1000),
          unit: 'bytes',
          note: `what reading those minutes costs (read units per 4 KB); previous design: ${Math.round((previous.urlBytes / records) * 1000)}`,
        });
      }
    }
  }
  return figures;
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

export const speedBench: BenchSection = async ({ quick, log }) => {
  const rounds = quick ? 9 : 25;
  log(`speed: generating ${rounds} batches of ${BATCH} records`);
  const work = batches(rounds + 1);
  const warm = work.pop()!;
  const deps = speedSinkDeps;

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
  const tableCost = await currentDesign(work);
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
      value: tableCost.writes / records,
      unit: 'writes',
      baseline: naive.sent() / records,
      ratio: naive.sent() / tableCost.writes,
      note: `100 urls, ${BATCH}-record batches; ${(tableCost.writeUnits / records).toPrecision(3)} WCU per record; ratio = naive / ours (fewer is better)`,
    },
    ...(await cardinalityAxis(quick ? 20_000 : 60_000, log)),
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
    // Long tail: 1,000-record batches at 100k urls/day on one warm handler; DynamoDB Local reports the units.
    // Another shard: the batch above already counted this one's sequence numbers in the same minutes.
    const longTail = chunks(shardTraffic((quick ? 5 : 20) * 1000, 100_000, 'shardId-000000000001'), 1000);
    let localUnits = 0;
    const observer: SpeedObserver = {
      count: (metric, value) => void (metric === 'WriteUnits' && (localUnits += value)),
    };
    const cache = new GenerationCache();
    const longTailStarted = performance.now();
    for (const batch of longTail) {
      if ((await processSpeedBatch(batch, { ...real, cache, observer })).batchItemFailures.length > 0)
        throw new Error('the speed handler reported failures against DynamoDB Local');
    }
    const longTailMs = (performance.now() - longTailStarted) / longTail.length;
    const modelled = await currentDesign(longTail);
    const longTailRecords = longTail.length * 1000;
    figures.push(
      {
        section: 'speed',
        metric: 'wall time of one 1000-record batch at 100,000 urls/day on DynamoDB Local',
        value: Math.round(longTailMs),
        unit: 'ms',
        baseline: Math.round((naiveMs / BATCH) * 1000),
        ratio: ((naiveMs / BATCH) * 1000) / longTailMs,
        note: `mean of ${longTail.length} consecutive batches, one warm handler; baseline: the naive handler's time per record above × 1000`,
      },
      {
        section: 'speed',
        metric:
          'write units per record at 100,000 urls/day, 1000-record batches, as DynamoDB Local reports them',
        value: localUnits / longTailRecords,
        unit: 'WCU',
        note: `the in-memory table charges ${(modelled.writeUnits / longTailRecords).toPrecision(3)} for the same batches`,
      },
    );
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
