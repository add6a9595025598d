import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiHandler } from '../../lambdas/api/handler.js';
import { readersFor } from '../../shared/serving/readers.js';
import { createBatchHandler } from '../../lambdas/batch/handler.js';
import { createSpeedHandler } from '../../lambdas/speed/handler.js';
import type { PageViewsResponse } from '../../shared/api-types.js';
import { encodePageView, type PageView } from '../../shared/event.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { DEFAULT_SPEED_SOURCE } from '../../shared/resources.js';
import { HOUR_MS, hourBucket, MINUTE_MS, toIso } from '../../shared/time.js';
import { apiEvent } from '../../local/api-events.js';
import { createDuckDbEngine } from '../../local/athena-duckdb.js';
import { KinesisEventSourceMapping, s3OnFailureStore } from '../../local/event-source-mapping.js';
import { FirehoseStandIn } from '../../local/firehose.js';
import { aPageView } from '../support/builders.js';
import { truthCounts } from '../support/ground-truth.js';
import { notifyLanded, testStack, type TestStack } from './support/stack.js';

/**
 * Traffic runs while the Firehose stand-in holds every delivery 15 s past its buffer. The pipeline runs on a
 * clock 60 times faster than the wall clock (15 s are 15 minutes, and the 5-minute margin of the old
 * clock-only horizon passes in 5 s), starting 90 s before an hour boundary: the records of that hour are still in flight when the clock
 * alone would let H pass it.
 */
describe('the horizon follows the data: H never passes an hour whose records are in flight', () => {
  const SPEED = 60;
  const DELAY_SECONDS = 15;
  const BUFFER_SECONDS = 20;
  let stack: TestStack;
  let esm: KinesisEventSourceMapping;
  let firehose: FirehoseStandIn;
  const started = Date.now();
  // An hour boundary in the past, so that event times stay behind the wall clock (the validator's future bound).
  const boundary = hourBucket(started) - HOUR_MS;
  const clock = () => boundary - 90_000 + (Date.now() - started) * SPEED;
  const lagging = boundary - HOUR_MS;

  beforeAll(async () => {
    stack = await testStack('watermark', { settings: { firehoseBufferSeconds: BUFFER_SECONDS } });
    esm = new KinesisEventSourceMapping({
      kinesis: stack.clients.kinesis,
      streamName: stack.names.stream,
      handler: createSpeedHandler({ clients: stack.clients, config: stack.config }),
      settings: { ...DEFAULT_SPEED_SOURCE, maxBatchingWindowSeconds: 0 },
      onFailure: s3OnFailureStore(stack.clients.s3, stack.names.bucket),
      pollIntervalMs: 100,
    });
    firehose = new FirehoseStandIn({
      kinesis: stack.clients.kinesis,
      s3: stack.clients.s3,
      streamName: stack.names.stream,
      bucket: stack.names.bucket,
      bufferSeconds: BUFFER_SECONDS,
      bufferBytes: 64 << 20,
      pollIntervalMs: 100,
      deliveryDelaySeconds: DELAY_SECONDS,
      clock,
    });
    await esm.start();
    await firehose.start();
  });
  afterAll(async () => {
    await esm?.stop();
    await firehose?.stop();
    stack?.destroy();
  });

  it('keeps H before the lagging hour until its records land, and every sampled answer is exact', async () => {
    const engine = createDuckDbEngine({
      s3: stack.clients.s3,
      bucket: stack.names.bucket,
      cacheDir: mkdtempSync(join(tmpdir(), 'duck-watermark-')),
    });
    const batch = createBatchHandler({
      clients: stack.clients,
      config: stack.config,
      engine,
      clock,
      delivery: firehose.deliveryMetrics,
    });
    const api = createApiHandler({
      ...readersFor(stack.clients, stack.config),
      retentionHours: stack.config.settings.speedRetentionHours,
      clock,
    });
    const sent: PageView[] = [];
    let laggedPastOldMargin = false;
    let passed = false;
    for (let round = 0; Date.now() - started < 50_000 && !passed; round += 1) {
      const now = clock();
      const events = Array.from({ length: 12 }, (_, i) =>
        aPageView({
          created: now - i * 10,
          url: `https://shop.example/p/${(round * 7 + i) % 23}`,
          userId: `u${i % 5}`,
          eventId: `r${round}-${i}`,
        }),
      );
      sent.push(...events);
      await putRecordsReliably(
        stack.clients.kinesis,
        stack.names.stream,
        events.map((e) => ({ data: new TextEncoder().encode(encodePageView(e)), partitionKey: e.eventId! })),
      );
      await esm.drain();
      // One shard, read in order: the first `landed` records sent are in S3.
      const landed = firehose.stats.records;
      const laggingSent = sent.filter((e) => hourBucket(e.created) === lagging).length;
      const inFlight = landed < laggingSent;
      const [reading] = await firehose.deliveryMetrics.readings(clock());
      // What the clock alone allowed: H = the hour at or before now − buffer − 5 min.
      const clockOnly = hourBucket(clock() - BUFFER_SECONDS * 1000 - 5 * MINUTE_MS);
      if (inFlight && clockOnly > lagging && (reading?.dataFreshnessMs ?? 0) > 0) laggedPastOldMargin = true;
      await notifyLanded(stack);
      const summary = await batch();
      const horizon = summary.horizon?.horizonMs;
      expect(horizon, `round ${round}: H`).toBeDefined();
      // Records still in flight after the run were in flight all through it: H must not have passed them.
      if (firehose.stats.records < laggingSent)
        expect(horizon!, `round ${round}: H with hour ${toIso(lagging)} in flight`).toBeLessThanOrEqual(
          lagging,
        );
      if (horizon! > lagging) passed = true;

      const from = lagging - HOUR_MS;
      const to = boundary + HOUR_MS;
      const result = await api(
        apiEvent('/v1/pageviews', {
          from: toIso(from),
          to: toIso(to),
          granularity: 'hour',
          by: 'url',
          top: '100',
        }),
      );
      expect(result.statusCode).toBe(200);
      const answer = JSON.parse(result.body!) as PageViewsResponse;
      const truth = truthCounts(sent, 'total', 'hour', { fromMs: from, toMs: to });
      const counts = new Map(truth.map((row) => [toIso(row.bucketMs), row.count]));
      expect(
        answer.buckets.map((b) => [b.start, b.source, b.count]),
        `round ${round}: hourly counts at H ${answer.horizon}`,
      ).toEqual(answer.buckets.map((b) => [b.start, b.source, counts.get(b.start) ?? 0]));
      const byUrl = new Map<string, number>();
      for (const e of sent) byUrl.set(e.url, (byUrl.get(e.url) ?? 0) + 1);
      expect(new Map(answer.breakdown!.map((b) => [b.value, b.total])), `round ${round}: urls`).toEqual(
        byUrl,
      );
    }
    expect(laggedPastOldMargin, 'the stand-in lagged past the old margin while the clock allowed H on').toBe(
      true,
    );
    expect(passed, `H passed ${toIso(lagging)} once its records had landed`).toBe(true);
  });
});
