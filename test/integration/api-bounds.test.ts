import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiHandler, type AnsweredRequest } from '../../lambdas/api/handler.js';
import { readersFor } from '../../shared/serving/readers.js';
import { PageViewGenerator } from '../../traffic/generator.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { DAY_MS, HOUR_MS, hourBucket, MINUTE_MS, toIso } from '../../shared/time.js';
import { apiEvent } from '../../local/api-events.js';
import { batchDeps, batchRun, landOnS3, localEngine, testStack, type TestStack } from './support/stack.js';

describe("each request's store requests, counted on the real readers", () => {
  let stack: TestStack;
  const now = hourBucket(Date.now()) + 20 * MINUTE_MS;

  beforeAll(async () => {
    stack = await testStack('api-bounds');
    const records = [...new PageViewGenerator({ seed: 71, startMs: now - DAY_MS, rate: 1 / 120 }).take(700)];
    await putRecordsReliably(stack.clients.kinesis, stack.names.stream, records);
    await landOnS3(stack);
    await batchRun(batchDeps(stack, localEngine(stack), now));
  });
  afterAll(() => stack.destroy());

  it('logs exactly the DynamoDB and S3 requests each answer made', async () => {
    let seen = 0;
    const answered: AnsweredRequest[] = [];
    const api = createApiHandler({
      ...readersFor(stack.clients, stack.config, () => (seen += 1)),
      retentionHours: stack.config.settings.speedRetentionHours,
      clock: () => now,
      onAnswered: (request) => answered.push(request),
    });
    const from = toIso(hourBucket(now) - DAY_MS);
    const to = toIso(hourBucket(now) + HOUR_MS);
    for (const query of <Record<string, string>[]>[
      { from, to },
      { from, to, by: 'url', metrics: 'visitors' },
      { from, to, granularity: 'minute' },
    ]) {
      const before = seen;
      const result = await api(apiEvent('/v1/pageviews', query));
      expect(result.statusCode, result.body).toBe(200);
      expect(answered.at(-1)!.storeRequests).toBe(seen - before);
      expect(answered.at(-1)!.storeRequests).toBeGreaterThan(1);
    }
  });
});
