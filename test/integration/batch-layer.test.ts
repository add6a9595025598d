import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AthenaClient } from '@aws-sdk/client-athena';
import { createBatchHandler } from '../../lambdas/batch/handler.js';
import { createAthenaEngine } from '../../shared/batch/athena-engine.js';
import { createBatchReader } from '../../shared/batch/reader.js';
import { readHorizonState } from '../../shared/batch/state.js';
import type { CountDimension } from '../../shared/counts.js';
import type { PageView } from '../../shared/event.js';
import { PageViewGenerator } from '../../shared/generator.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { SQL_NAMES } from '../../shared/sql/index.js';
import { DAY_MS, HOUR_MS, hourBucket } from '../../shared/time.js';
import { createDuckDbEngine, type DuckDbEngine } from '../../local/athena-duckdb.js';
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
});
