import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAthenaEngine } from '../../shared/batch/athena-engine.js';
import { PageViewGenerator } from '../../traffic/generator.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { PREFIXES } from '../../shared/resources.js';
import { collectRows } from '../../shared/sql/index.js';
import { HOUR_MS, hourBucket, hourPartition, hourPartitionPath } from '../../shared/time.js';
import { createDuckDbEngine } from '../../local/athena-duckdb.js';
import { athenaAnswering, athenaCsvLines, ATHENA_CSV_HEADER } from '../../local/athena-csv.js';
import { landOnS3, testStack, type TestStack } from './support/stack.js';

describe("the Athena engine reads a query's result from its CSV file in S3", () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await testStack('athena-results');
  });
  afterAll(() => stack.destroy());

  it('yields the rows DuckDB computed, hostile values and visitor sketches included, in chunks', async () => {
    const hour = hourBucket(Date.now()) - 3 * HOUR_MS;
    const records = [
      ...new PageViewGenerator({ seed: 41, startMs: hour, rate: 1, hostileFraction: 0.3 }).take(1500),
    ].filter((r) => r.event && hourBucket(r.event.created) === hour);
    await putRecordsReliably(stack.clients.kinesis, stack.names.stream, records);
    await landOnS3(stack);
    const duck = createDuckDbEngine({
      s3: stack.clients.s3,
      bucket: stack.names.bucket,
      cacheDir: mkdtempSync(join(tmpdir(), 'duck-athena-')),
    });
    const { dt, hour: hh } = hourPartition(hour);
    const params = ['default', dt, hh, String(Number(hh) + 1).padStart(2, '0')];
    const expected = await collectRows(duck.query('hourly_views', params, [hourPartitionPath(hour)]));
    expect(expected.some((r) => r.visitors?.kind === 'dense')).toBe(true);
    expect(expected.some((r) => /[^\x20-\x7e]/.test(r.value))).toBe(true);

    const key = `${PREFIXES.athenaResults}local.csv`;
    await stack.clients.s3.send(
      new PutObjectCommand({
        Bucket: stack.names.bucket,
        Key: key,
        Body: ATHENA_CSV_HEADER + athenaCsvLines(expected),
      }),
    );
    const calls: string[] = [];
    const athena = createAthenaEngine({
      athena: athenaAnswering(`s3://${stack.names.bucket}/${key}`, calls),
      s3: stack.clients.s3,
      workgroup: 'w',
      database: 'd',
      sleep: async () => undefined,
    });
    const chunks: number[] = [];
    const rows = [];
    for await (const chunk of athena.query('hourly_views', params, [])) {
      chunks.push(chunk.length);
      rows.push(...chunk);
    }
    expect(rows).toEqual(expected);
    expect(Math.max(...chunks)).toBeLessThanOrEqual(1000);
    // Polled until it succeeded, then one GET of the file: no GetQueryResults pages.
    expect(calls).toEqual(['StartQueryExecutionCommand', 'GetQueryExecutionCommand']);
  });
});
