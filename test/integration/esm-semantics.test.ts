import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KinesisStreamEvent } from 'aws-lambda';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { DEFAULT_SPEED_SOURCE, type SpeedSourceSettings } from '../../shared/resources.js';
import {
  interpretResponse,
  KinesisEventSourceMapping,
  type KinesisHandler,
  type OnFailureRecord,
} from '../../local/event-source-mapping.js';
import { testStack, type TestStack } from './support/stack.js';

const settings = (overrides: Partial<SpeedSourceSettings> = {}): SpeedSourceSettings => ({
  ...DEFAULT_SPEED_SOURCE,
  batchSize: 50,
  maxBatchingWindowSeconds: 0,
  retryAttempts: 3,
  ...overrides,
});

/** Records every delivery: which payloads each invocation saw, per shard. */
class Recorder {
  readonly deliveries: { shard: string; payloads: string[] }[] = [];
  readonly onFailure: OnFailureRecord[] = [];
  constructor(
    private readonly decide: (payloads: string[], event: KinesisStreamEvent) => ReturnType<KinesisHandler>,
  ) {}
  handler: KinesisHandler = async (event) => {
    const payloads = event.Records.map((r) => Buffer.from(r.kinesis.data, 'base64').toString());
    this.deliveries.push({ shard: event.Records[0]!.eventID.split(':')[0]!, payloads });
    return this.decide(payloads, event);
  };
  delivered(): string[] {
    return this.deliveries.flatMap((d) => d.payloads);
  }
}

async function putNumbered(
  stack: TestStack,
  count: number,
  key = (i: number) => `k${i % 7}`,
): Promise<string[]> {
  const payloads = Array.from({ length: count }, (_, i) => `r${i}`);
  await putRecordsReliably(
    stack.clients.kinesis,
    stack.names.stream,
    payloads.map((p, i) => ({ data: Buffer.from(p), partitionKey: key(i) })),
  );
  return payloads;
}

describe('partial batch responses', () => {
  const batch = ['1', '2', '3'].map((SequenceNumber) => ({ SequenceNumber }));
  it('resumes from the lowest reported sequence number', () => {
    const response = { batchItemFailures: [{ itemIdentifier: '3' }, { itemIdentifier: '2' }] };
    expect(interpretResponse(batch, response)).toEqual({ ok: false, resumeIndex: 1 });
  });
  it.each([
    ['an empty itemIdentifier', { batchItemFailures: [{ itemIdentifier: '' }] }],
    ['a null itemIdentifier', { batchItemFailures: [{ itemIdentifier: null }] }],
    ['a wrong key name', { batchItemFailures: [{ itemId: '2' }] }],
    ['an identifier outside the batch', { batchItemFailures: [{ itemIdentifier: '9' }] }],
  ])('fails the whole batch for %s', (_, response) => {
    expect(interpretResponse(batch, response)).toMatchObject({ ok: false, wholeBatch: true });
  });
  it('treats an empty list, no list or no response as success', () => {
    expect(interpretResponse(batch, { batchItemFailures: [] })).toEqual({ ok: true });
    expect(interpretResponse(batch, {})).toEqual({ ok: true });
    expect(interpretResponse(batch, undefined)).toEqual({ ok: true });
  });
  it('refuses a parallelization factor other than 1', () => {
    expect(
      () =>
        new KinesisEventSourceMapping({
          kinesis: {} as never,
          streamName: 's',
          handler: async () => undefined,
          settings: { ...settings(), parallelizationFactor: 2 as 1 },
        }),
    ).toThrow(/parallelizationFactor must be 1/);
  });
});

describe('event source mapping on the Kinesis emulator', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await testStack('esm', { shards: 2 });
  });
  afterAll(() => stack.destroy());

  const mapping = (recorder: Recorder, overrides: Partial<SpeedSourceSettings> = {}, stateDir?: string) =>
    new KinesisEventSourceMapping({
      kinesis: stack.clients.kinesis,
      streamName: stack.names.stream,
      handler: recorder.handler,
      settings: settings(overrides),
      pollIntervalMs: 100,
      retryDelayMs: 10,
      onFailure: { put: async (record) => void recorder.onFailure.push(record) },
      ...(stateDir ? { stateDir } : {}),
    });

  it('delivers every record once, in order per shard, and resumes from its checkpoint after a restart', async () => {
    stack = await testStack('esm-order', { shards: 2 });
    const stateDir = mkdtempSync(join(tmpdir(), 'esm-'));
    const sent = await putNumbered(stack, 300);
    const first = new Recorder(async () => undefined);
    const esm = mapping(first, {}, stateDir);
    await esm.start();
    await esm.drain();
    await esm.stop();
    expect([...first.delivered()].sort()).toEqual([...sent].sort());
    expect(first.deliveries.every((d) => d.payloads.length <= 50)).toBe(true);
    for (const shard of new Set(first.deliveries.map((d) => d.shard))) {
      const seen = first.deliveries.filter((d) => d.shard === shard).flatMap((d) => d.payloads);
      const byKey = (payloads: string[], key: number) =>
        payloads.filter((p) => Number(p.slice(1)) % 7 === key);
      for (let key = 0; key < 7; key += 1) {
        const keyed = byKey(seen, key);
        expect(keyed).toEqual([...keyed].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))));
      }
    }
    const more = await putNumbered(stack, 20, () => 'later');
    const second = new Recorder(async () => undefined);
    const restarted = mapping(second, {}, stateDir);
    await restarted.start();
    await restarted.drain();
    await restarted.stop();
    expect(second.delivered()).toEqual(more);
  });

  it('resumes at the reported record: records before it are not redelivered', async () => {
    stack = await testStack('esm-partial', { shards: 1 });
    const sent = await putNumbered(stack, 120);
    let failedOnce = false;
    const recorder = new Recorder(async (payloads, event) => {
      const index = payloads.indexOf('r70');
      if (index >= 0 && !failedOnce) {
        failedOnce = true;
        return { batchItemFailures: [{ itemIdentifier: event.Records[index]!.kinesis.sequenceNumber }] };
      }
      return { batchItemFailures: [] };
    });
    const esm = mapping(recorder);
    await esm.start();
    await esm.drain();
    await esm.stop();
    const delivered = recorder.delivered();
    // r50..r69 were in the failing batch before r70: checkpointed, delivered once. r70..r99 come again.
    expect(delivered.filter((p) => p === 'r60')).toHaveLength(1);
    expect(delivered.filter((p) => p === 'r70')).toHaveLength(2);
    expect(delivered.filter((p) => p === 'r99')).toHaveLength(2);
    expect(new Set(delivered)).toEqual(new Set(sent));
    const retry = recorder.deliveries.find((d, i) => i > 0 && d.payloads[0] === 'r70');
    expect(retry).toBeDefined();
  });

  it('bisects a failing batch down to the poison record, sends it on failure and moves on', async () => {
    stack = await testStack('esm-bisect', { shards: 1 });
    const sent = await putNumbered(stack, 64);
    const recorder = new Recorder(async (payloads) => {
      if (payloads.includes('r37')) throw new Error('poison');
      return undefined;
    });
    const esm = mapping(recorder, { batchSize: 64, retryAttempts: 10 });
    await esm.start();
    await esm.drain();
    await esm.stop();
    expect(recorder.deliveries[0]!.payloads).toHaveLength(64);
    // Halves shrink: 64 → 32 → 16 → 8 → 4 → 2 → 1.
    const sizes = recorder.deliveries.filter((d) => d.payloads.includes('r37')).map((d) => d.payloads.length);
    expect(sizes.slice(0, 7)).toEqual([64, 32, 16, 8, 4, 2, 1]);
    expect(recorder.onFailure).toHaveLength(1);
    expect(recorder.onFailure[0]!.KinesisBatchInfo.batchSize).toBe(1);
    expect(recorder.onFailure[0]!.requestContext.condition).toBe('RetryAttemptsExhausted');
    const succeeded = new Set(recorder.delivered().filter((p) => p !== 'r37'));
    expect(succeeded).toEqual(new Set(sent.filter((p) => p !== 'r37')));
  });

  it('retries the whole batch when the response names no valid record', async () => {
    stack = await testStack('esm-whole', { shards: 1 });
    await putNumbered(stack, 10);
    let calls = 0;
    const recorder = new Recorder(async () =>
      ++calls === 1 ? { batchItemFailures: [{ itemIdentifier: '' }] } : undefined,
    );
    const esm = mapping(recorder, { bisectBatchOnError: false });
    await esm.start();
    await esm.drain();
    await esm.stop();
    expect(recorder.deliveries.map((d) => d.payloads.length)).toEqual([10, 10]);
  });
});
