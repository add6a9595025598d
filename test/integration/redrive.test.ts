import { spawnSync } from 'node:child_process';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createCatalogHandler, objectCreatedEvent } from '../../lambdas/catalog/handler.js';
import { transformRecord } from '../../shared/batch/transform.js';
import type { RedriveSummary } from '../../shared/batch/redrive.js';
import type { BatchDeps } from '../../shared/batch/run.js';
import { decodeBase64PageView, type PageView } from '../../shared/event.js';
import { PageViewGenerator } from '../../traffic/generator.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { PREFIXES, DEFAULT_SETTINGS } from '../../shared/resources.js';
import { HOUR_MS, hourBucket, MINUTE_MS } from '../../shared/time.js';
import { allBreakdownRows } from '../support/breakdown.js';
import { truthCounts } from '../support/ground-truth.js';
import {
  batchDeps,
  batchRun,
  batchReader,
  landOnS3,
  localEngine,
  notifyLanded,
  testStack,
  type TestStack,
} from './support/stack.js';

describe('records Firehose could not process come back with npm run redrive', () => {
  let stack: TestStack;
  const valid: PageView[] = [];
  const now = hourBucket(Date.now()) + 20 * MINUTE_MS;
  const first = hourBucket(now) - 6 * HOUR_MS;
  let deps: BatchDeps;

  /** `npm run redrive` on the test stack's bucket, as a user runs it against a deployed one. */
  function redrive(): RedriveSummary {
    const { endpoints, credentials, region } = inject('emulators');
    const run = spawnSync(
      'npm',
      ['run', '--silent', 'redrive', '--', '--bucket', stack.names.bucket, '--json'],
      {
        encoding: 'utf8',
        env: {
          ...process.env,
          AWS_ENDPOINT_URL_S3: endpoints.s3,
          AWS_ACCESS_KEY_ID: credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
          AWS_REGION: region,
        },
      },
    );
    expect(run.status, run.stderr.slice(-2000)).toBe(0);
    return JSON.parse(run.stdout.trim().split('\n').pop()!) as RedriveSummary;
  }

  beforeAll(async () => {
    stack = await testStack('redrive');
    deps = batchDeps(stack, localEngine(stack), now);
    const records = [
      ...new PageViewGenerator({ seed: 61, startMs: first, rate: 1 / 60, malformedFraction: 0.05 }).take(300),
    ];
    valid.push(...records.filter((r) => r.event).map((r) => r.event!));
    await putRecordsReliably(stack.clients.kinesis, stack.names.stream, records);
    // The transform's invocations fail for a share of the records (timeouts, throttles, a bad deploy).
    let calls = 0;
    await landOnS3(stack, {
      transform: (record) => {
        calls += 1;
        if (calls % 4 === 0) throw new Error('Task timed out after 60.00 seconds');
        return transformRecord(record);
      },
    });
  });
  afterAll(() => stack.destroy());

  const reader = () => batchReader(stack);
  async function expectExact(): Promise<void> {
    const horizon = (await reader().readHorizon())!;
    expect(
      await reader().readTotals(
        { site: DEFAULT_SETTINGS.defaultSite, fromMs: first, toMs: horizon.horizonMs, granularity: 'hour' },
        horizon,
      ),
    ).toEqual(truthCounts(valid, 'total', 'hour', { toMs: horizon.horizonMs }));
    expect(await allBreakdownRows(reader(), DEFAULT_SETTINGS.defaultSite, 'url', first, horizon)).toEqual(
      truthCounts(valid, 'url', 'hour', { toMs: horizon.horizonMs }),
    );
  }

  it('undercounts while they are set aside, and is exact once they are redriven', async () => {
    const failed = await stack.clients.s3.send(
      new ListObjectsV2Command({
        Bucket: stack.names.bucket,
        Prefix: `${PREFIXES.firehoseErrors}processing-failed/`,
      }),
    );
    expect(failed.Contents?.length).toBeGreaterThan(0);
    // The catalog counts such an object (the ProcessingFailedObjects alarm) and marks nothing for it.
    const catalog = createCatalogHandler({ clients: stack.clients, config: stack.config });
    expect(await catalog(objectCreatedEvent(stack.names.bucket, failed.Contents![0]!.Key!))).toEqual({
      hoursMarked: 0,
      processingFailed: true,
    });
    const before = await batchRun(deps);
    const horizon = before.horizon!;
    const counted = await reader().readTotals(
      { site: DEFAULT_SETTINGS.defaultSite, fromMs: first, toMs: horizon.horizonMs, granularity: 'hour' },
      horizon,
    );
    const total = (rows: { count: number }[]) => rows.reduce((sum, r) => sum + r.count, 0);
    expect(total(counted)).toBeLessThan(valid.length);

    const summary = redrive();
    // Every failed invocation's record is back; the invalid ones are refused again, by name.
    const malformed = 300 - valid.length;
    expect(summary.redriven).toBe(valid.length - total(counted));
    expect(summary.records - summary.redriven).toBe(
      Object.values(summary.refused).reduce((a, b) => a + (b ?? 0), 0),
    );
    expect(summary.records - summary.redriven).toBeLessThanOrEqual(malformed);
    expect(summary.objectsWritten).toBeGreaterThan(0);
    await notifyLanded(stack);
    await batchRun({ ...deps, clock: () => now + MINUTE_MS });
    await expectExact();
  });

  it('changes nothing when run twice', async () => {
    const summary = redrive();
    expect(summary).toMatchObject({ objectsWritten: 0 });
    expect(summary.objectsPresent).toBeGreaterThan(0);
    expect(await notifyLanded(stack)).toBe(0);
    const run = await batchRun({ ...deps, clock: () => now + 2 * MINUTE_MS });
    expect(run).toMatchObject({ hours: 0, rowsWritten: 0, objectsWritten: 0 });
    await expectExact();
  });

  it('keeps each record whole: the redriven rows are the events that failed, byte for byte', async () => {
    // The processing-failed lines hold the records' data unchanged (rawData), as Firehose writes them.
    const listed = await stack.clients.s3.send(
      new ListObjectsV2Command({
        Bucket: stack.names.bucket,
        Prefix: `${PREFIXES.firehoseErrors}processing-failed/`,
      }),
    );
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    let decoded = 0;
    for (const object of listed.Contents ?? []) {
      const body = await stack.clients.s3.send(
        new GetObjectCommand({ Bucket: stack.names.bucket, Key: object.Key }),
      );
      for (const line of (await body.Body!.transformToString()).split('\n').filter(Boolean)) {
        const { rawData, errorCode } = JSON.parse(line) as { rawData: string; errorCode: string };
        const event = decodeBase64PageView(rawData, now);
        if (errorCode === 'Lambda.FunctionError' && event.ok) {
          expect(valid).toContainEqual(event.event);
          decoded += 1;
        }
      }
    }
    expect(decoded).toBeGreaterThan(0);
  });
});
