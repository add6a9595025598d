import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { COLUMNS, encodePageView, FIELD_NAMES, type PageView } from '../../shared/event.js';
import { sourceOf } from '../../shared/sources.js';
import { PageViewGenerator } from '../../traffic/generator.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { PREFIXES } from '../../shared/resources.js';
import { hourPartitionPath, HOUR_MS } from '../../shared/time.js';
import { duckdbConnection } from '../../local/duckdb.js';
import { expectSequenceNumber } from './support/kinesis-contract.js';
import { landOnS3, testStack, type TestStack } from './support/stack.js';

describe('Firehose stand-in', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await testStack('firehose', { shards: 2 });
  });
  afterAll(() => stack.destroy());

  async function objects(prefix: string): Promise<{ key: string; body: Uint8Array }[]> {
    const listed = await stack.clients.s3.send(
      new ListObjectsV2Command({ Bucket: stack.names.bucket, Prefix: prefix }),
    );
    return Promise.all(
      (listed.Contents ?? []).map(async ({ Key }) => {
        const object = await stack.clients.s3.send(new GetObjectCommand({ Bucket: stack.names.bucket, Key }));
        return { key: Key!, body: await object.Body!.transformToByteArray() };
      }),
    );
  }

  it('lands valid events as Parquet in their event-time partitions and failed records under the error prefix', async () => {
    const now = Date.now();
    const generator = new PageViewGenerator({
      seed: 11,
      startMs: now - 60_000,
      rate: 50,
      lateFraction: 0.2,
      lateLagMs: 3 * HOUR_MS,
      malformedFraction: 0.05,
    });
    const records = [...generator.take(600)];
    await putRecordsReliably(stack.clients.kinesis, stack.names.stream, records);
    const flushed = await landOnS3(stack);

    const valid = records.filter((r) => r.event).map((r) => r.event!);
    expect(flushed.records).toBe(valid.length);

    const dir = mkdtempSync(join(tmpdir(), 'firehose-test-'));
    const raw = await objects(PREFIXES.raw);
    const partitions = new Set(valid.map((e) => hourPartitionPath(e.created)));
    expect(new Set(raw.map((o) => o.key.split('/').slice(1, 3).join('/')))).toEqual(partitions);
    const connection = await duckdbConnection();
    const landed: string[] = [];
    const identities: string[] = [];
    for (const [i, object] of raw.entries()) {
      expect(object.key).toMatch(/^raw\/dt=\d{4}-\d{2}-\d{2}\/hour=\d{2}\/.+\.parquet$/);
      const path = join(dir, `${i}.parquet`);
      writeFileSync(path, object.body);
      const result = await connection.runAndReadAll(`SELECT * FROM read_parquet('${path}')`);
      for (const row of result.getRowObjects()) {
        // Every field of the event, by the schema's columns; a field the event lacks is NULL.
        const event = Object.fromEntries(
          COLUMNS.filter((c) => (FIELD_NAMES as string[]).includes(c.field) && row[c.name] !== null).map(
            (c) => [c.field, c.type === 'string' ? String(row[c.name]) : Number(row[c.name])],
          ),
        ) as unknown as PageView;
        expect(object.key).toContain(hourPartitionPath(event.created));
        expect(row.source).toBe(sourceOf(event));
        landed.push(encodePageView(event));
        identities.push(`${String(row.shardid)}/${String(row.sequencenumber)}`);
      }
    }
    connection.closeSync();
    expect(landed.sort()).toEqual(valid.map((e) => encodePageView(e)).sort());
    // Every row keeps the identity of the Kinesis record that carried it: one per record, none repeated.
    expect(new Set(identities).size).toBe(valid.length);
    for (const identity of identities) {
      const [shardId, sequenceNumber] = identity.split('/');
      expect(shardId).toMatch(/^shardId-\d{12}$/);
      expectSequenceNumber(sequenceNumber);
    }

    const errors = (await objects(PREFIXES.firehoseErrors)).flatMap((o) =>
      new TextDecoder()
        .decode(o.body)
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { errorMessage: string; rawData: string }),
    );
    const malformed = records.filter((r) => r.kind === 'malformed');
    expect(errors.map((e) => Buffer.from(e.rawData, 'base64').toString('hex')).sort()).toEqual(
      malformed.map((r) => Buffer.from(r.data).toString('hex')).sort(),
    );
    expect(errors.every((e) => e.errorMessage.length > 0)).toBe(true);
  });
});
