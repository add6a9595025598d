import {
  CreateWorkGroupCommand,
  GetQueryExecutionCommand,
  ListQueryExecutionsCommand,
  type AthenaClient,
  type QueryExecution,
} from '@aws-sdk/client-athena';
import { PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { TrinoSQL } from 'dt-sql-parser';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBatchHandler } from '../../lambdas/batch/handler.js';
import { createAwsClients, type AwsClients } from '../../shared/aws-clients.js';
import { AthenaQueryTimeoutError, createAthenaEngine } from '../../shared/batch/athena-engine.js';
import { markLanded, readDirtyHours } from '../../shared/batch/catalog.js';
import { cloudWatchDeliveryMetrics } from '../../shared/batch/delivery.js';
import { readFailingHours } from '../../shared/batch/retries.js';
import { DEFAULT_SETTINGS, type RuntimeConfig } from '../../shared/resources.js';
import { hourPartitionPath, HOUR_MS, MINUTE_MS } from '../../shared/time.js';
import { ATHENA_CSV_HEADER } from '../../local/athena-csv.js';
import { startMoto, type RunningMoto } from './support/moto.js';
import { testStack, type TestStack } from './support/stack.js';

/**
 * The production Athena engine (shared/batch/athena-engine.ts) against Athena's API as moto plays it: the
 * statements it sends, the workgroup it runs in, and what a run does when a query outlives the time it has.
 * moto runs no SQL (it answers an empty result), so the counts are DuckDB's job elsewhere; the SQL itself is
 * checked here against a Trino grammar, which is what Athena engine v3 parses.
 */

const NOW = Date.UTC(2026, 10, 25, 12, 30);

describe('the batch layer on Athena', () => {
  let moto: RunningMoto;
  let stack: TestStack;
  let clients: AwsClients;
  let config: RuntimeConfig;
  /** Every statement the engine sent, as Athena received it. */
  const sent: string[] = [];

  beforeAll(async () => {
    moto = await startMoto();
    stack = await testStack('athena');
    const emulators = inject('emulators');
    clients = createAwsClients({
      ...emulators,
      endpoints: { ...emulators.endpoints, athena: moto.endpoint, cloudwatch: moto.endpoint },
    });
    config = { names: stack.names, settings: DEFAULT_SETTINGS };
    await clients.athena.send(
      new CreateWorkGroupCommand({
        Name: stack.names.athenaWorkgroup,
        Configuration: {
          ResultConfiguration: { OutputLocation: `s3://${stack.names.bucket}/athena-results/` },
        },
      }),
    );
    clients.athena.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { QueryString?: string };
        if (input.QueryString) sent.push(input.QueryString);
        return next(args);
      },
      { step: 'initialize', name: 'captureStatements' },
    );
    // moto neither reports a query's result location nor writes its result. Athena does both: the result is
    // `<QueryExecutionId>.csv` under the workgroup's location (Athena user guide, "Working with query results,
    // recent queries, and output files"). moto runs no SQL, so the file played here is an empty result.
    clients.athena.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const execution = (result.output as { QueryExecution?: QueryExecution }).QueryExecution;
        if (execution?.Status?.State === 'SUCCEEDED' && !execution.ResultConfiguration?.OutputLocation) {
          const key = `athena-results/${execution.QueryExecutionId}.csv`;
          await clients.s3.send(
            new PutObjectCommand({ Bucket: stack.names.bucket, Key: key, Body: ATHENA_CSV_HEADER }),
          );
          execution.ResultConfiguration = { OutputLocation: `s3://${stack.names.bucket}/${key}` };
        }
        return result;
      },
      { step: 'initialize', name: 'playResultFile' },
    );
  });
  afterAll(async () => {
    clients?.destroy();
    stack?.destroy();
    await moto?.stop();
  });

  const state = () => ({ documents: stack.clients.documents, tableName: stack.names.tables.batchState });
  const markHour = (hourMs: number) =>
    markLanded(state(), [`raw/${hourPartitionPath(hourMs)}/part-0.parquet`], NOW);

  it('runs each dirty hour as a query in the batch workgroup, in SQL that a Trino grammar accepts', async () => {
    const hourMs = Math.floor(NOW / HOUR_MS) * HOUR_MS - 3 * HOUR_MS;
    await markHour(hourMs);
    const engine = createAthenaEngine({
      athena: clients.athena,
      s3: clients.s3,
      workgroup: stack.names.athenaWorkgroup,
      database: stack.names.glueDatabase,
      sleep: () => Promise.resolve(),
    });
    const summary = await createBatchHandler({ clients, config, engine, clock: () => NOW })();

    expect(summary).toMatchObject({ outcome: 'published', hours: 1, queries: 1 });
    const { QueryExecutionIds } = await clients.athena.send(
      new ListQueryExecutionsCommand({ WorkGroup: stack.names.athenaWorkgroup }),
    );
    expect(QueryExecutionIds).toHaveLength(1);
    expect(sent.length).toBeGreaterThan(0);
    for (const statement of sent) expect(new TrinoSQL().validate(statement)).toEqual([]);
  });

  it('stops a query that outlives the time the run has, releases the lease and keeps the hour for the next run', async () => {
    const hourMs = Math.floor(NOW / HOUR_MS) * HOUR_MS - 2 * HOUR_MS;
    await markHour(hourMs);
    // moto finishes every query at once; a slow query is the fault injected here: it stays RUNNING.
    const slow = createAwsClients({
      ...inject('emulators'),
      endpoints: { ...inject('emulators').endpoints, athena: moto.endpoint },
    }).athena as AthenaClient;
    slow.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        const output = result.output as { QueryExecution?: { Status?: { State?: string } } };
        if (context.commandName === 'GetQueryExecutionCommand' && output.QueryExecution?.Status) {
          output.QueryExecution.Status.State = 'RUNNING';
        }
        return result;
      },
      { step: 'initialize', name: 'slowQuery' },
    );
    const stopped: string[] = [];
    slow.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'StopQueryExecutionCommand') {
          stopped.push((args.input as { QueryExecutionId: string }).QueryExecutionId);
        }
        return next(args);
      },
      { step: 'initialize', name: 'watchStops' },
    );
    // 1.5 s left in the invocation, 1 s of it reserved: the run waits about half a second, then stops the query.
    const engine = createAthenaEngine({
      athena: slow,
      s3: clients.s3,
      workgroup: stack.names.athenaWorkgroup,
      database: stack.names.glueDatabase,
      remainingTimeMs: () => 1500,
      reserveMs: 1000,
    });

    const logged: string[] = [];
    const summary = await createBatchHandler({
      clients,
      config,
      engine,
      clock: () => NOW,
      log: (line) => logged.push(line),
    })();

    // A scheduled run goes on past a failing day (docs/faults.md): the hour is recorded as failing, kept dirty.
    expect(summary).toMatchObject({ failedHours: 1 });
    expect(logged.some((line) => line.includes(AthenaQueryTimeoutError.name))).toBe(true);
    expect([...(await readFailingHours(state())).keys()]).toContain(hourMs);

    expect(stopped).toHaveLength(1);
    const { QueryExecution } = await clients.athena.send(
      new GetQueryExecutionCommand({ QueryExecutionId: stopped[0] }),
    );
    expect(QueryExecution?.Status?.State).toBe('CANCELLED');
    const { Item: lease } = await stack.clients.documents.send(
      new GetCommand({ TableName: stack.names.tables.batchState, Key: { pk: 'lease', sk: 'batch' } }),
    );
    expect(lease).toBeUndefined();
    expect((await readDirtyHours(state())).map((d) => d.hourMs)).toContain(hourMs);
    slow.destroy();
  });

  it("bounds H by Firehose's delivery metrics as CloudWatch answers them (GetMetricData)", async () => {
    const fresh = await testStack('athena-delivery');
    const freshConfig = { names: fresh.names, settings: DEFAULT_SETTINGS };
    const freshState = { documents: fresh.clients.documents, tableName: fresh.names.tables.batchState };
    const deliveryStreamName = `${fresh.names.bucket}-delivery`;
    // Firehose publishes these itself on AWS; here the test plays it. The newest minute says the oldest record
    // not yet in S3 is 45 minutes old: nothing from before 11:43 is still in flight, and the hour 11:00 may be.
    const metric = (MetricName: string, Value: number) => ({
      MetricName,
      Dimensions: [{ Name: 'DeliveryStreamName', Value: deliveryStreamName }],
      Timestamp: new Date(NOW - 2 * MINUTE_MS),
      Value,
    });
    await clients.cloudwatch.send(
      new PutMetricDataCommand({
        Namespace: 'AWS/Firehose',
        MetricData: [
          metric('DeliveryToS3.DataFreshness', 45 * 60),
          metric('KinesisMillisBehindLatest', 0),
          metric('DataReadFromKinesisStream.Records', 100),
        ],
      }),
    );
    const hours = [NOW - 2.5 * HOUR_MS, NOW - 1.5 * HOUR_MS].map((t) => Math.floor(t / HOUR_MS) * HOUR_MS);
    for (const hourMs of hours)
      await markLanded(freshState, [`raw/${hourPartitionPath(hourMs)}/part-0.parquet`], NOW);
    const engine = createAthenaEngine({
      athena: clients.athena,
      s3: clients.s3,
      workgroup: stack.names.athenaWorkgroup,
      database: stack.names.glueDatabase,
      sleep: () => Promise.resolve(),
    });
    const delivery = cloudWatchDeliveryMetrics({ cloudwatch: clients.cloudwatch, deliveryStreamName });

    const summary = await createBatchHandler({
      clients: { documents: fresh.clients.documents, s3: clients.s3 },
      config: freshConfig,
      engine,
      delivery,
      clock: () => NOW,
    })();

    // The clock alone would allow 12:00; the metrics allow 11:00, so the hour 11:00 waits for a later run.
    expect(summary).toMatchObject({ outcome: 'published', hours: 1, horizon: { horizonMs: hours[1] } });
    expect((await readDirtyHours(freshState)).map((d) => d.hourMs)).toContain(hours[1]);
    fresh.destroy();
  });
});
