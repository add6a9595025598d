import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { KinesisStreamRecord } from 'aws-lambda';
import { aggregateBatch } from '../shared/speed/aggregate.js';
import {
  DEFAULT_CELL_WRITE_LIMITS,
  emptyTally,
  GenerationCache,
  startProgress,
  writeCell,
  type CellWriteLimits,
} from '../shared/speed/cell-writer.js';
import { processSpeedBatch, type SpeedDeps, type SpeedObserver } from '../shared/speed/speed-layer.js';
import { createAwsClients } from '../shared/aws-clients.js';
import { decodeBase64PageView, dimensionValue, DIMENSIONS } from '../shared/event.js';
import { PageViewGenerator } from '../traffic/generator.js';
import { speedSortKey } from '../shared/keys.js';
import { resourceNames } from '../shared/resources.js';
import { userHash } from '../shared/sketch/index.js';
import { padSequence, VALUE_BUCKETS } from '../shared/speed/table.js';
import { minuteBucket } from '../shared/time.js';
import { startEmulators } from '../local/emulators.js';
import { KinesisRecordBuilder } from '../local/kinesis-records.js';
import { provision } from '../local/provision.js';
import { chunks, cpuSeconds, percentile } from './support/stats.js';
import type { BenchFigure, BenchSection } from './support/types.js';
import { runCli } from '../tools/cli.js';
import { benchMain, isEntry } from './support/cli.js';

/**
 * Speed layer: the aggregate-then-write handler against a naive handler that issues one UpdateItem per event,
 * both on 10,000-record batches from the generator's default distribution, both writing to a counting sink;
 * then a cardinality axis (distinct urls per day × Lambda batch size) of writes and write units per record,
 * beside the naive design and the previous one (one item per minute, value and shard, one write per cell).
 */

const BATCH = 10_000;
const URLS_PER_DAY = [100, 10_000, 100_000, 1_000_000] as const;
const LAMBDA_BATCHES = [100, 1000] as const;

/** A stand-in DynamoDB client that only counts what it is sent. */
function countingSink(): { client: DynamoDBDocumentClient; sent: () => number } {
  let sent = 0;
  const client = { send: async () => ((sent += 1), {}) } as unknown as DynamoDBDocumentClient;
  return { client, sent: () => sent };
}

type Item = Record<string, unknown>;
interface Expression {
  readonly names?: Record<string, string>;
  readonly values?: Record<string, unknown>;
}

/** DynamoDB's size of an item: attribute names plus values (a number: 1 byte per two digits, plus 1). */
function itemBytes(item: Item): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) {
    bytes += Buffer.byteLength(name, 'utf8');
    const numberBytes = (n: number) =>
      Math.ceil(String(Math.abs(n)).replace(/^0+|\.|0+$/g, '').length / 2) + 1;
    if (typeof value === 'string') bytes += Buffer.byteLength(value, 'utf8');
    else if (typeof value === 'number') bytes += numberBytes(value);
    else if (value instanceof Set) for (const n of value as Set<number>) bytes += numberBytes(n);
    else bytes += 1;
  }
  return bytes;
}

/** Evaluates a condition of comparisons, AND, OR, parentheses and attribute_(not_)exists on an item. */
function evaluateCondition(
  text: string,
  item: Item | undefined,
  { names = {}, values = {} }: Expression,
): boolean {
  const tokens =
    text.match(/\(|\)|<=|>=|<>|<|>|=|\bAND\b|\bOR\b|attribute_not_exists|attribute_exists|[#:][\w]+/g) ?? [];
  let at = 0;
  const operand = (token: string): unknown =>
    token.startsWith('#') ? item?.[names[token] ?? token.slice(1)] : values[token];
  const primary = (): boolean => {
    const token = tokens[at++]!;
    if (token === '(') {
      const inner = or();
      at += 1;
      return inner;
    }
    if (token === 'attribute_not_exists' || token === 'attribute_exists') {
      const present = operand(tokens[at + 1]!) !== undefined;
      at += 3;
      return token === 'attribute_exists' ? present : !present;
    }
    const [left, op, right] = [operand(token), tokens[at++]!, operand(tokens[at++]!)];
    if (left === undefined || right === undefined || typeof left !== typeof right) return false;
    const l = left as string | number;
    const r = right as string | number;
    return op === '<'
      ? l < r
      : op === '<='
        ? l <= r
        : op === '>'
          ? l > r
          : op === '>='
            ? l >= r
            : op === '='
              ? l === r
              : l !== r;
  };
  const and = (): boolean => {
    let result = primary();
    while (tokens[at] === 'AND') {
      at += 1;
      result = primary() && result;
    }
    return result;
  };
  const or = (): boolean => {
    let result = and();
    while (tokens[at] === 'OR') {
      at += 1;
      result = and() || result;
    }
    return result;
  };
  return or();
}

/**
 * A stand-in for the speed table that evaluates what the speed layer sends — UpdateItem with SET and ADD of
 * placeholders and a condition, Query by key — and charges what DynamoDB charges: a write (applied or not)
 * one unit per KB of the larger of the item before and after, a strongly consistent read one unit per 4 KB.
 * It refuses items over 400 KB, as DynamoDB does.
 */
class InMemorySpeedTable {
  readonly items = new Map<string, Item>();
  writes = 0;
  writeUnits = 0;
  reads = 0;
  readUnits = 0;
  readonly client = {
    send: (command: { input: Record<string, unknown> }) => this.send(command),
  } as unknown as DynamoDBDocumentClient;

  private async send(command: {
    constructor: { name: string };
    input: Record<string, unknown>;
  }): Promise<unknown> {
    const input = command.input;
    const expression = {
      names: input.ExpressionAttributeNames as Record<string, string> | undefined,
      values: input.ExpressionAttributeValues as Record<string, unknown> | undefined,
    };
    if (command.constructor.name === 'UpdateCommand') return this.update(input, expression);
    if (command.constructor.name === 'QueryCommand') return this.query(input, expression);
    throw new Error(`the in-memory speed table does not take ${command.constructor.name}`);
  }

  private update(input: Record<string, unknown>, expression: Expression) {
    const key = input.Key as { pk: string; sk: string };
    const id = `${key.pk}\n${key.sk}`;
    const before = this.items.get(id);
    const beforeBytes = before ? itemBytes(before) : 0;
    this.writes += 1;
    const condition = input.ConditionExpression as string | undefined;
    if (condition && !evaluateCondition(condition, before, expression)) {
      this.writeUnits += Math.max(1, Math.ceil(beforeBytes / 1024));
      throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
    }
    const after: Item = { ...(before ?? key) };
    const updated: Item = {};
    const { names = {}, values = {} } = expression;
    for (const [, action, clauses] of (input.UpdateExpression as string).matchAll(
      /(SET|ADD) (.*?)(?= SET | ADD |$)/g,
    )) {
      for (const clause of clauses!.split(', ')) {
        const [path, value] = action === 'SET' ? clause.split(' = ') : clause.split(' ');
        const name = names[path!] ?? path!;
        const operand = values[value!];
        // ADD: a number adds, a set (the visitor hashes) is a union.
        const next =
          action === 'SET'
            ? operand
            : operand instanceof Set
              ? new Set([...((after[name] as Set<number> | undefined) ?? []), ...operand])
              : ((after[name] as number | undefined) ?? 0) + (operand as number);
        after[name] = updated[name] = next;
      }
    }
    const afterBytes = itemBytes(after);
    if (afterBytes > 400 * 1024)
      throw new Error('ValidationException: Item size has exceeded the maximum allowed size');
    this.items.set(id, after);
    const units = Math.max(1, Math.ceil(Math.max(beforeBytes, afterBytes) / 1024));
    this.writeUnits += units;
    return {
      Attributes: input.ReturnValues === 'UPDATED_NEW' ? updated : undefined,
      ConsumedCapacity: { CapacityUnits: units },
    };
  }

  private query(input: Record<string, unknown>, { values = {} }: Expression) {
    const match = /^pk = (:\w+) AND sk BETWEEN (:\w+) AND (:\w+)$/.exec(
      input.KeyConditionExpression as string,
    );
    if (!match)
      throw new Error(
        `the in-memory speed table does not take the key condition ${String(input.KeyConditionExpression)}`,
      );
    const [pk, lo, hi] = [values[match[1]!], values[match[2]!], values[match[3]!]] as string[];
    const found = [...this.items.values()]
      .filter((item) => item.pk === pk && (item.sk as string) >= lo! && (item.sk as string) <= hi!)
      .sort((a, b) => ((a.sk as string) < (b.sk as string) ? -1 : 1));
    if (input.ScanIndexForward === false) found.reverse();
    const items = found.slice(0, (input.Limit as number | undefined) ?? found.length);
    this.reads += 1;
    this.readUnits += Math.max(1, Math.ceil(items.reduce((sum, item) => sum + itemBytes(item), 0) / 4096));
    return { Items: items.map((item) => ({ ...item })) };
  }
}

/** One shard's worth of traffic: 1,000 records/s, the per-shard write limit. */
function shardTraffic(count: number, urlCount?: number, shardId?: string): KinesisStreamRecord[] {
  const now = Date.now();
  const generator = new PageViewGenerator({
    seed: 7,
    startMs: now - 10 * 60_000,
    rate: 1000,
    ...(urlCount ? { urlCount } : {}),
  });
  const shard = new KinesisRecordBuilder(shardId);
  return [...generator.take(count)].map((r) => shard.record(r.data, now));
}

const batches = (count: number): KinesisStreamRecord[][] => chunks(shardTraffic(count * BATCH), BATCH);

interface WriteCost {
  readonly writes: number;
  readonly writeUnits: number;
  /** Bytes of url counter items stored: what a reader of those minutes reads. */
  readonly urlBytes: number;
  /** Bytes of every item stored (all dimensions). */
  readonly allBytes?: number;
}

/** What the table was charged, and the bytes its items hold (all, and the url dimension's). */
function footprint(items: Iterable<Item>, writes: number, writeUnits: number): WriteCost {
  let urlBytes = 0;
  let allBytes = 0;
  for (const item of items) {
    const bytes = itemBytes(item);
    allBytes += bytes;
    if ((item.pk as string).startsWith('url#')) urlBytes += bytes;
  }
  return { writes, writeUnits, urlBytes, allBytes };
}

/** This design: the real handler, one warm instance, against the in-memory table. */
export async function currentDesign(
  lambdaBatches: readonly KinesisStreamRecord[][],
  options: { visitors?: boolean } = {},
): Promise<WriteCost> {
  const table = new InMemorySpeedTable();
  const cache = new GenerationCache();
  const limits = { ...DEFAULT_CELL_WRITE_LIMITS, visitors: options.visitors ?? true };
  for (const batch of lambdaBatches) {
    const response = await processSpeedBatch(batch, { ...sinkDeps(table.client), cache, limits });
    if (response.batchItemFailures.length > 0)
      throw new Error('the speed handler failed on the in-memory table');
  }
  return footprint(table.items.values(), table.writes, table.writeUnits);
}

/**
 * The previous design, sized from the same aggregation: one item per (minute, dimension, value, shard) with
 * its count, high-water, minute, value and TTL, and one UpdateItem per such cell and batch.
 */
function previousDesign(lambdaBatches: readonly KinesisStreamRecord[][], nowMs: number): WriteCost {
  const items = new Map<string, Item>();
  let writes = 0;
  let writeUnits = 0;
  for (const batch of lambdaBatches) {
    for (const cell of aggregateBatch(batch, nowMs, 48).cells.values()) {
      const counts = new Map<number, number>();
      for (const index of cell.valueIndexes) counts.set(index, (counts.get(index) ?? 0) + 1);
      for (const [index, count] of counts) {
        const value = cell.values[index]!;
        const sk = speedSortKey(cell.minuteMs, value, cell.shardId);
        const key = `${cell.pk}\n${sk}`;
        const before = items.get(key);
        const after: Item = {
          pk: cell.pk,
          sk,
          n: ((before?.n as number | undefined) ?? 0) + count,
          hw: padSequence(cell.sequences[cell.sequences.length - 1]!),
          m: cell.minuteMs,
          v: value,
          expiresAt: cell.expiresAt,
        };
        items.set(key, after);
        writes += 1;
        writeUnits += Math.ceil(Math.max(before ? itemBytes(before) : 0, itemBytes(after)) / 1024);
      }
    }
  }
  return footprint(items.values(), writes, writeUnits);
}

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

/**
 * The naive handler: per event, decode, validate and one UpdateItem on its minute's item that adds to the
 * total's and each dimension's page-view counter, error counter (status 400 or above) and visitor set (the
 * user's hash): the same metrics as ours, one write per event.
 */
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
    const cells = ['total', ...DIMENSIONS.map((d) => `${d}=${dimensionValue(result.event, d)}`)];
    const error = result.event.status >= 400;
    const names: Record<string, string> = {};
    const adds: string[] = [];
    for (const [i, cell] of cells.entries()) {
      names[`#c${i}`] = `c ${cell}`;
      names[`#u${i}`] = `u ${cell}`;
      adds.push(`#c${i} :one`, `#u${i} :user`);
      if (error) {
        names[`#e${i}`] = `e ${cell}`;
        adds.push(`#e${i} :one`);
      }
    }
    await documents.send(
      new UpdateCommand({
        TableName: table,
        Key: { pk: `naive#${minuteBucket(result.event.created)}`, sk: '-' },
        UpdateExpression: `ADD ${adds.join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ':one': 1, ':user': new Set([userHash(result.event.userId)]) },
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

const s3Sink = { send: async () => ({}) } as unknown as S3Client;

const sinkDeps = (documents: DynamoDBDocumentClient): SpeedDeps => ({
  documents,
  s3: s3Sink,
  tableName: 'bench',
  bucket: 'bench',
  retentionHours: 48,
  clock: Date.now,
});

export const speedBench: BenchSection = async ({ quick, log }) => {
  const rounds = quick ? 9 : 25;
  log(`speed: generating ${rounds} batches of ${BATCH} records`);
  const work = batches(rounds + 1);
  const warm = work.pop()!;
  const deps = sinkDeps;

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

/** A layout to compare: url value buckets and the generation size limit. */
interface Layout {
  readonly urlBuckets: number;
  readonly itemSizeLimitBytes: number;
}

const LAYOUTS: readonly Layout[] = [
  { urlBuckets: 1, itemSizeLimitBytes: 4096 },
  { urlBuckets: 1, itemSizeLimitBytes: 8192 },
  { urlBuckets: VALUE_BUCKETS.url, itemSizeLimitBytes: DEFAULT_CELL_WRITE_LIMITS.itemSizeLimitBytes },
  { urlBuckets: 8, itemSizeLimitBytes: 8192 },
  { urlBuckets: 4, itemSizeLimitBytes: 16384 },
];

/** Writes, write units and stored url bytes of one layout, through the real aggregation and cell writer. */
async function layoutCost(
  lambdaBatches: readonly KinesisStreamRecord[][],
  layout: Layout,
): Promise<WriteCost> {
  const table = new InMemorySpeedTable();
  const writer = {
    documents: table.client,
    tableName: 'bench',
    limits: {
      ...DEFAULT_CELL_WRITE_LIMITS,
      itemSizeLimitBytes: layout.itemSizeLimitBytes,
    } as CellWriteLimits,
    cache: new GenerationCache(),
  };
  const tally = emptyTally();
  const now = Date.now();
  for (const batch of lambdaBatches) {
    const { cells } = aggregateBatch(batch, now, 48, { ...VALUE_BUCKETS, url: layout.urlBuckets });
    for (const cell of cells.values()) await writeCell(writer, cell, startProgress(), tally);
  }
  return footprint(table.items.values(), table.writes, table.writeUnits);
}

/**
 * `npx tsx bench/speed.ts --layouts`: the trade-off behind the layout's constants, over one minute of one
 * shard (60,000 records): requests and write units per record against the url bytes a reader of that minute reads.
 */
async function compareLayouts(): Promise<void> {
  const records = 60_000;
  const rows: string[] = [
    '| urls/day | batch | layout | writes/record | WCU/record | url bytes per 1,000 records |',
    '| ---: | ---: | --- | ---: | ---: | ---: |',
  ];
  for (const urls of [100, 300, 1000, 3000, 10_000, 100_000, 1_000_000]) {
    const traffic = shardTraffic(records, urls);
    for (const size of LAMBDA_BATCHES) {
      const lambdaBatches = chunks(traffic, size);
      const previous = previousDesign(lambdaBatches, Date.now());
      const row = (layout: string, cost: WriteCost) =>
        rows.push(
          `| ${urls.toLocaleString('en-US')} | ${size} | ${layout} | ${(cost.writes / records).toFixed(3)} | ${(cost.writeUnits / records).toFixed(3)} | ${Math.round((cost.urlBytes / records) * 1000).toLocaleString('en-US')} |`,
        );
      row('previous (one item per value)', previous);
      for (const layout of LAYOUTS) {
        const chosen =
          layout.urlBuckets === VALUE_BUCKETS.url &&
          layout.itemSizeLimitBytes === DEFAULT_CELL_WRITE_LIMITS.itemSizeLimitBytes;
        const name = `${layout.urlBuckets} bucket${layout.urlBuckets > 1 ? 's' : ''}, ${layout.itemSizeLimitBytes / 1024} KB`;
        row(chosen ? `**${name}** (this design)` : name, await layoutCost(lambdaBatches, layout));
      }
      process.stderr.write(`layouts: ${urls} urls/day, ${size}-record batches done\n`);
    }
  }
  process.stdout.write(rows.join('\n') + '\n');
}

if (isEntry(import.meta.url) && process.argv.includes('--layouts')) runCli(compareLayouts);
else benchMain(import.meta.url, speedBench);
