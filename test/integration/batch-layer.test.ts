import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AthenaClient } from '@aws-sdk/client-athena';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createBatchHandler } from '../../lambdas/batch/handler.js';
import { createAthenaEngine } from '../../shared/batch/athena-engine.js';
import { createBatchReader } from '../../shared/batch/reader.js';
import { readHorizonState } from '../../shared/batch/state.js';
import type { CountDimension } from '../../shared/counts.js';
import type { MasterRecord, PageView } from '../../shared/event.js';
import { PageViewGenerator } from '../../shared/generator.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { SQL_NAMES } from '../../shared/sql/index.js';
import { PREFIXES } from '../../shared/resources.js';
import { DAY_MS, HOUR_MS, hourBucket, hourPartitionPath } from '../../shared/time.js';
import { createDuckDbEngine, type DuckDbEngine } from '../../local/athena-duckdb.js';
import { duckdbConnection } from '../../local/duckdb.js';
import { parquetBytes } from '../../local/parquet.js';
import { truthCounts } from '../support/ground-truth.js';
import { landOnS3, testStack, type TestStack } from './support/stack.js';

const DIMENSIONS: CountDimension[] = ['total', 'url', 'country', 'browser', 'status'];

describe('batch layer on the local stack', () => {
  let stack: TestStack;
  let engine: DuckDbEngine;
  // The stand-in's checkpoints persist between landings, so each landing writes only the new records.
  const stateDir = mkdtempSync(join(tmpdir(), 'firehose-state-'));
  const sent: PageView[] = [];
  const now = Date.now();

  async function land(events: { data: Uint8Array; partitionKey: string }[]) {
    await putRecordsReliably(stack.clients.kinesis, stack.names.stream, events);
    await landOnS3(stack, { stateDir });
  }

  const batch = (options: { beforePublish?: () => Promise<void> } = {}) =>
    createBatchHandler({
      clients: stack.clients,
      config: stack.config,
      engine,
      clock: () => now,
      ...options,
    });
  const reader = () =>
    createBatchReader({
      documents: stack.clients.documents,
      viewsTable: stack.names.tables.batchViews,
      stateTable: stack.names.tables.batchState,
    });

  async function expectViewsToEqualTruth() {
    const horizon = (await reader().readHorizon())!;
    const firstDay = Math.floor(Math.min(...sent.map((e) => e.created)) / DAY_MS) * DAY_MS;
    for (const dimension of DIMENSIONS) {
      const hours = await reader().readCounts(
        { dimension, fromMs: firstDay, toMs: horizon.horizonMs, granularity: 'hour' },
        horizon,
      );
      expect(hours, `hourly ${dimension}`).toEqual(
        truthCounts(sent, dimension, 'hour', { toMs: horizon.horizonMs }),
      );
      const lastFullDay = Math.floor(horizon.horizonMs / DAY_MS) * DAY_MS;
      const days = await reader().readCounts(
        { dimension, fromMs: firstDay, toMs: lastFullDay, granularity: 'day' },
        horizon,
      );
      expect(days, `daily ${dimension}`).toEqual(truthCounts(sent, dimension, 'day', { toMs: lastFullDay }));
    }
  }

  beforeAll(async () => {
    stack = await testStack('batch', {
      shards: 1,
      settings: { trailingWindowHours: 6, firehoseBufferSeconds: 60 },
    });
    engine = createDuckDbEngine({
      s3: stack.clients.s3,
      bucket: stack.names.bucket,
      cacheDir: mkdtempSync(join(tmpdir(), 'duck-')),
    });
    // Two days of history up to about an hour ago, spread across a day boundary.
    const generator = new PageViewGenerator({
      seed: 21,
      startMs: hourBucket(now) - 30 * HOUR_MS,
      rate: 1 / 120,
    });
    const records = [...generator.take(880)];
    sent.push(...records.map((r) => r.event!));
    await land(records);
  });
  afterAll(() => stack.destroy());

  it('computes views equal to the ground truth and publishes H', async () => {
    const summary = await batch()();
    expect(summary.outcome).toBe('published');
    expect(summary.horizon!.horizonMs).toBe(hourBucket(now - 60_000 - 5 * 60_000));
    await expectViewsToEqualTruth();
  });

  it('changes nothing when run again', async () => {
    const before = await readHorizonState({
      documents: stack.clients.documents,
      tableName: stack.names.tables.batchState,
    });
    const summary = await batch()();
    expect(summary.horizon!.horizonMs).toBe(before!.horizonMs);
    expect(summary.horizon!.version).not.toBe(before!.version);
    await expectViewsToEqualTruth();
  });

  it('folds in late events inside the trailing window on the next run', async () => {
    const horizon = (await reader().readHorizon())!;
    const late = [
      ...new PageViewGenerator({ seed: 22, startMs: horizon.horizonMs - 3 * HOUR_MS, rate: 1 / 10 }).take(60),
    ];
    sent.push(...late.map((r) => r.event!));
    await land(late);
    await batch()();
    await expectViewsToEqualTruth();
  });

  it('leaves H where it was when a run dies before publishing, and the next run completes it', async () => {
    const before = await reader().readHorizon();
    const extra = [
      ...new PageViewGenerator({ seed: 23, startMs: before!.horizonMs - 2 * HOUR_MS, rate: 1 / 30 }).take(40),
    ];
    sent.push(...extra.map((r) => r.event!));
    await land(extra);
    await expect(batch({ beforePublish: () => Promise.reject(new Error('killed')) })()).rejects.toThrow(
      'killed',
    );
    expect(await reader().readHorizon()).toEqual(before);
    expect((await batch()()).outcome).toBe('published');
    await expectViewsToEqualTruth();
  });

  it('lets only one of two concurrent runs work', async () => {
    const results = await Promise.all([batch()(), batch()()]);
    expect(results.map((r) => r.outcome).sort()).toEqual(['published', 'skipped']);
  });

  it('scans only the partitions of the hours it computes', async () => {
    const before = engine.stats.objectsScanned;
    await batch()();
    const scanned = engine.stats.objectsScanned - before;
    expect(scanned).toBeGreaterThan(0);
    expect(scanned).toBeLessThanOrEqual(7 + 24 + 2);
  });

  it('sends Athena byte for byte the SQL text that DuckDB ran', async () => {
    const sentToAthena: string[] = [];
    const athena = new AthenaClient({
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    // Capture the request and stop it before it leaves: there is no Athena here.
    athena.middlewareStack.add(
      (_next, context) => async (args) => {
        if (context.commandName === 'StartQueryExecutionCommand') {
          sentToAthena.push((args.input as { QueryString: string }).QueryString);
        }
        throw new Error('captured');
      },
      { step: 'initialize' },
    );
    const athenaEngine = createAthenaEngine({ athena, workgroup: 'w', database: 'd' });
    for (const name of SQL_NAMES) {
      await expect(athenaEngine.query(name, ['2026-01-01', '00', '24'], [])).rejects.toThrow('captured');
    }
    const files = SQL_NAMES.map((name) =>
      readFileSync(new URL(`../../shared/sql/${name}.sql`, import.meta.url), 'utf8'),
    );
    expect(sentToAthena).toEqual(files);
    for (const text of files) expect(engine.executed).toContain(text);
  });

  it('counts a Parquet object landed twice, and rows repeated inside an object, once', async () => {
    const horizon = (await reader().readHorizon())!;
    const partition = hourPartitionPath(horizon.horizonMs - HOUR_MS);
    const listed = await stack.clients.s3.send(
      new ListObjectsV2Command({ Bucket: stack.names.bucket, Prefix: `${PREFIXES.raw}${partition}/` }),
    );
    const key = listed.Contents![0]!.Key!;
    const object = await stack.clients.s3.send(
      new GetObjectCommand({ Bucket: stack.names.bucket, Key: key }),
    );
    const bytes = await object.Body!.transformToByteArray();
    // What a Firehose re-delivery looks like: the same object under a second key in its partition.
    await stack.clients.s3.send(
      new PutObjectCommand({ Bucket: stack.names.bucket, Key: `${key}.redelivered.parquet`, Body: bytes }),
    );
    // And an object whose rows are each there twice.
    const rows = await readParquetRows(bytes);
    expect(rows.length).toBeGreaterThan(0);
    await stack.clients.s3.send(
      new PutObjectCommand({
        Bucket: stack.names.bucket,
        Key: `${PREFIXES.raw}${partition}/doubled.parquet`,
        Body: await parquetBytes([...rows, ...rows]),
      }),
    );
    const summary = await batch()();
    expect(summary.outcome).toBe('published');
    await expectViewsToEqualTruth();
  });

  it("counts a producer's re-sends of an event (same eventId, other records) once", async () => {
    const horizon = (await reader().readHorizon())!;
    const records = [
      ...new PageViewGenerator({
        seed: 24,
        startMs: horizon.horizonMs - 2 * HOUR_MS,
        rate: 1 / 20,
        duplicateFraction: 0.2,
        hostileFraction: 0.3,
      }).take(150),
    ];
    const resends = records.filter((r) => r.kind === 'duplicate');
    expect(resends.length).toBeGreaterThan(10);
    sent.push(...records.filter((r) => r.event && r.kind !== 'duplicate').map((r) => r.event!));
    await land(records);
    await batch()();
    await expectViewsToEqualTruth();
  });

  it('keeps a view row the table refuses for good aside and still publishes H', async () => {
    const before = (await reader().readHorizon())!;
    const refusedValue = 'http://www.example.com/id=3';
    const refusing = new Proxy(stack.clients.documents, {
      get(target, property, receiver) {
        if (property !== 'send') return Reflect.get(target, property, receiver);
        return (command: { constructor: { name: string }; input: unknown }) => {
          if (
            command.constructor.name === 'BatchWriteCommand' &&
            JSON.stringify(command.input).includes(`${refusedValue}"`)
          ) {
            return Promise.reject(
              Object.assign(new Error('One or more parameter values were invalid'), {
                name: 'ValidationException',
                $metadata: { httpStatusCode: 400 },
              }),
            );
          }
          return target.send(command as never);
        };
      },
    });
    const summary = await createBatchHandler({
      clients: { ...stack.clients, documents: refusing },
      config: stack.config,
      engine,
      clock: () => now + HOUR_MS,
    })();
    expect(summary.outcome).toBe('published');
    expect(summary.horizon!.horizonMs).toBe(before.horizonMs + HOUR_MS);
    const refusedRows = truthCounts(sent, 'url', 'hour', {
      fromMs: summary.horizon!.computedFromMs,
      toMs: summary.horizon!.computedToMs,
    }).filter((r) => r.value === refusedValue).length;
    expect(summary.unstorableRows).toBeGreaterThanOrEqual(refusedRows);
    expect(summary.unstorableRows).toBeGreaterThan(0);
    const listed = await stack.clients.s3.send(
      new ListObjectsV2Command({ Bucket: stack.names.bucket, Prefix: `${PREFIXES.deadLetter}batch/` }),
    );
    const body = await (
      await stack.clients.s3.send(
        new GetObjectCommand({ Bucket: stack.names.bucket, Key: listed.Contents![0]!.Key! }),
      )
    ).Body!.transformToString();
    const kept = body
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { value: string; error: string });
    expect(kept).toHaveLength(summary.unstorableRows);
    for (const row of kept) {
      expect(row.value).toBe(refusedValue);
      expect(row.error).toContain('ValidationException');
    }
  });
});

/** The rows of a master-dataset Parquet object, read back with DuckDB. */
async function readParquetRows(bytes: Uint8Array): Promise<MasterRecord[]> {
  const dir = mkdtempSync(join(tmpdir(), 'rows-'));
  const path = join(dir, 'object.parquet');
  writeFileSync(path, bytes);
  const connection = await duckdbConnection();
  try {
    const result = await connection.runAndReadAll(`SELECT * FROM read_parquet('${path}')`);
    return result.getRowObjects().map((row) => ({
      created: Number(row.created),
      url: String(row.url),
      status: Number(row.status),
      country: String(row.country),
      browser: String(row.browser),
      userId: String(row.userid),
      ...(row.eventid === null ? {} : { eventId: String(row.eventid) }),
      shardId: String(row.shardid),
      sequenceNumber: String(row.sequencenumber),
    }));
  } finally {
    connection.closeSync();
  }
}
