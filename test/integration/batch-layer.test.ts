import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AthenaClient } from '@aws-sdk/client-athena';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createBatchHandler } from '../../lambdas/batch/handler.js';
import { createAthenaEngine } from '../../shared/batch/athena-engine.js';
import { createBatchReader } from '../../shared/batch/reader.js';
import { readHorizonState } from '../../shared/batch/state.js';
import type { MasterRecord, PageView } from '../../shared/event.js';
import { PageViewGenerator } from '../../traffic/generator.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { collectRows, SQL_NAMES } from '../../shared/sql/index.js';
import type { BatchWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { TOTAL_VALUE } from '../../shared/counts.js';
import { viewKeys } from '../../shared/keys.js';
import { PREFIXES, DEFAULT_SETTINGS } from '../../shared/resources.js';
import { DAY_MS, HOUR_MS, hourBucket, hourPartitionPath, toIso } from '../../shared/time.js';
import { createDuckDbEngine, type DuckDbEngine } from '../../local/athena-duckdb.js';
import { duckdbConnection } from '../../local/duckdb.js';
import { parquetBytes } from '../../local/parquet.js';
import { allBreakdownRows, allBreakdownVisitors } from '../support/breakdown.js';
import { truthCounts, truthVisitors } from '../support/ground-truth.js';
import { COLUMNS, DIMENSIONS, dimensionValue } from '../../shared/event.js';
import { countingWrites, landOnS3, notifyLanded, testStack, type TestStack } from './support/stack.js';

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

  const batch = (options: { beforePublish?: () => Promise<void>; clients?: TestStack['clients'] } = {}) =>
    createBatchHandler({
      clients: options.clients ?? stack.clients,
      config: stack.config,
      engine,
      clock: () => now,
      ...(options.beforePublish ? { beforePublish: options.beforePublish } : {}),
    });
  const reader = () =>
    createBatchReader({
      documents: stack.clients.documents,
      s3: stack.clients.s3,
      bucket: stack.names.bucket,
      viewsTable: stack.names.tables.batchViews,
      stateTable: stack.names.tables.batchState,
    });

  async function expectViewsToEqualTruth() {
    const horizon = (await reader().readHorizon())!;
    const firstDay = Math.floor(Math.min(...sent.map((e) => e.created)) / DAY_MS) * DAY_MS;
    const hours = await reader().readTotals(
      {
        site: DEFAULT_SETTINGS.defaultSite,
        fromMs: firstDay,
        toMs: horizon.horizonMs,
        granularity: 'hour',
        visitors: true,
      },
      horizon,
    );
    expect(hours, 'hourly totals').toEqual(
      truthCounts(sent, 'total', 'hour', { toMs: horizon.horizonMs, visitors: true }),
    );
    const lastFullDay = Math.floor(horizon.horizonMs / DAY_MS) * DAY_MS;
    const days = await reader().readTotals(
      {
        site: DEFAULT_SETTINGS.defaultSite,
        fromMs: firstDay,
        toMs: lastFullDay,
        granularity: 'day',
        visitors: true,
      },
      horizon,
    );
    // A day's visitors are the union of its hours' sketches.
    expect(days, 'daily totals').toEqual(
      truthCounts(sent, 'total', 'day', { toMs: lastFullDay, visitors: true }),
    );
    for (const dimension of DIMENSIONS) {
      const rows = await allBreakdownRows(
        reader(),
        DEFAULT_SETTINGS.defaultSite,
        dimension,
        firstDay,
        horizon,
      );
      expect(rows, `hourly ${dimension}`).toEqual(
        truthCounts(sent, dimension, 'hour', { toMs: horizon.horizonMs }),
      );
      // Each value's visitors over the range: day sketches for whole days, hour sketches for the day H cuts.
      const values = [...new Set(rows.map((r) => r.value))];
      const visitors = await allBreakdownVisitors(
        reader(),
        DEFAULT_SETTINGS.defaultSite,
        dimension,
        firstDay,
        horizon,
        values,
      );
      const before = sent.filter((e) => e.created >= firstDay && e.created < horizon.horizonMs);
      for (const value of values) {
        expect(visitors.get(value), `visitors of ${dimension} ${value}`).toEqual(
          truthVisitors(before.filter((e) => dimensionValue(e, dimension) === value)),
        );
      }
    }
  }

  beforeAll(async () => {
    stack = await testStack('batch', {
      shards: 1,
      settings: { firehoseBufferSeconds: 60 },
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

  it('computes nothing and writes nothing but its bookkeeping when no object landed', async () => {
    const before = await readHorizonState({
      documents: stack.clients.documents,
      tableName: stack.names.tables.batchState,
    });
    const counting = countingWrites(stack.clients);
    const summary = await batch({ clients: counting.clients })();
    expect(summary.horizon!.horizonMs).toBe(before!.horizonMs);
    expect(summary.horizon!.version).not.toBe(before!.version);
    expect(summary).toMatchObject({ hours: 0, queries: 0, rowsWritten: 0, objectsWritten: 0 });
    // Only the run's own state: lease, horizon, last run.
    expect(counting.writes.filter((w) => !w.startsWith(`${stack.names.tables.batchState}:`))).toEqual([]);
    await expectViewsToEqualTruth();
  });

  it('folds in events 10 hours late on the next run, without a rebuild, recomputing only their hour', async () => {
    const horizon = (await reader().readHorizon())!;
    const lateHour = horizon.horizonMs - 10 * HOUR_MS;
    const late = [...new PageViewGenerator({ seed: 22, startMs: lateHour + 60_000, rate: 1 / 20 }).take(60)];
    expect(new Set(late.map((r) => hourBucket(r.event!.created)))).toEqual(new Set([lateHour]));
    sent.push(...late.map((r) => r.event!));
    await land(late);
    const counting = countingWrites(stack.clients);
    const summary = await batch({ clients: counting.clients })();
    expect(summary.hours).toBe(1);
    expect(summary.queries).toBe(1);
    // The hour's total and its day's total changed; nothing else in the totals.
    expect(summary.rowsWritten).toBe(2);
    const views = counting.writes.filter((w) => w.startsWith(`${stack.names.tables.batchViews}:`));
    // One BatchWrite per granularity for the totals, one manifest per dimension of the day, and the day's filter
    // cube manifest (docs/filters.md).
    expect(views.length).toBe(2 + DIMENSIONS.length + 1);
    const objects = counting.writes.filter((w) => w.startsWith('s3:'));
    expect(objects.length).toBe(summary.objectsWritten - DIMENSIONS.length);
    for (const key of objects) expect(key).toContain(`/dt=${toIso(lateHour).slice(0, 10)}/`);
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
    // A run that starts while another holds the lease does nothing.
    let inner: Awaited<ReturnType<ReturnType<typeof batch>>> | undefined;
    const outer = await batch({
      beforePublish: async () => {
        inner = await batch()();
      },
    })();
    expect([outer.outcome, inner?.outcome]).toEqual(['published', 'skipped']);
    // Two runs racing for the lease. DynamoDB's conditional writes are atomic ("Individual write operations such
    // as UpdateItem are atomic", developer guide, "Best practices for handling concurrent updates"), so one wins.
    // moto's server checks the condition and writes in two steps, so both can win there (docs/single-endpoint.md):
    // the race runs where DynamoDB Local serves the table.
    if (inject('emulators').embedded) {
      const results = await Promise.all([batch()(), batch()()]);
      expect(results.map((r) => r.outcome).sort()).toEqual(['published', 'skipped']);
    }
  });

  it('scans only the partitions that received objects', async () => {
    const horizon = (await reader().readHorizon())!;
    const late = [
      ...new PageViewGenerator({ seed: 25, startMs: horizon.horizonMs - 20 * HOUR_MS, rate: 1 / 60 }).take(5),
    ];
    sent.push(...late.map((r) => r.event!));
    await land(late);
    const before = { objects: engine.stats.objectsScanned, queries: engine.stats.queries };
    await batch()();
    const partitions = new Set(late.map((r) => hourPartitionPath(r.event!.created)));
    expect(engine.stats.queries - before.queries).toBe(partitions.size);
    // Each of those partitions now holds the objects of two landings: the first history and this one.
    expect(engine.stats.objectsScanned - before.objects).toBeLessThanOrEqual(2 * partitions.size);
    await expectViewsToEqualTruth();
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
    const athenaEngine = createAthenaEngine({ athena, s3: stack.clients.s3, workgroup: 'w', database: 'd' });
    for (const name of SQL_NAMES) {
      await expect(collectRows(athenaEngine.query(name, ['2026-01-01', '00', '24'], []))).rejects.toThrow(
        'captured',
      );
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
    // S3 announces both new objects: the run recomputes their hour, and counts each record once.
    expect(await notifyLanded(stack)).toBe(2);
    const summary = await batch()();
    expect(summary.hours).toBe(1);
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

  it('keeps a view row the table refuses for good aside, still publishes H, and a rebuild repairs it', async () => {
    const before = (await reader().readHorizon())!;
    const hour = before.horizonMs - 5 * HOUR_MS;
    const late = [...new PageViewGenerator({ seed: 26, startMs: hour + 1000, rate: 1 / 60 }).take(10)];
    sent.push(...late.map((r) => r.event!));
    await land(late);
    // The hour's total row only: the run also writes the hour H passes, which can share its day partition.
    const refused = viewKeys(DEFAULT_SETTINGS.defaultSite, 'hour', 'total', hour, TOTAL_VALUE);
    const holdsRefusedRow = (input: unknown) =>
      Object.values((input as BatchWriteCommandInput).RequestItems ?? {}).some((requests) =>
        requests.some(
          ({ PutRequest }) => PutRequest?.Item?.pk === refused.pk && PutRequest.Item.sk === refused.sk,
        ),
      );
    const refusing = new Proxy(stack.clients.documents, {
      get(target, property, receiver) {
        if (property !== 'send') return Reflect.get(target, property, receiver);
        return (command: { constructor: { name: string }; input: unknown }) => {
          if (command.constructor.name === 'BatchWriteCommand' && holdsRefusedRow(command.input)) {
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
    expect(summary.unstorableRows).toBe(1);
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
      .map((line) => JSON.parse(line) as { bucketMs: number; views: number; error: string });
    expect(kept).toEqual([
      expect.objectContaining({ bucketMs: hour, error: expect.stringContaining('ValidationException') }),
    ]);
    // The repair: a rebuild of that hour writes the row once the table takes it.
    await batch()({ from: hour, to: hour + HOUR_MS });
    await expectViewsToEqualTruth();
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
    return result
      .getRowObjects()
      .map(
        (row) =>
          Object.fromEntries(
            COLUMNS.filter((c) => row[c.name] !== null).map((c) => [
              c.field,
              c.type === 'string' ? String(row[c.name]) : Number(row[c.name]),
            ]),
          ) as unknown as MasterRecord,
      );
  } finally {
    connection.closeSync();
  }
}
