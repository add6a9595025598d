import type { PageViewsResponse } from '../shared/api-types.js';
import { encodePageView } from '../shared/event.js';
import { putRecordsReliably } from '../shared/kinesis-producer.js';
import { DEFAULT_SETTINGS, resourceNames } from '../shared/resources.js';
import { HOUR_MS, hourBucket, toIso } from '../shared/time.js';
import { startLocalStack } from '../local/stack.js';
import { percentile } from './support/stats.js';
import { benchMain } from './support/cli.js';
import type { BenchFigure, BenchSection } from './support/types.js';

/**
 * End-to-end freshness on the local stack: the time from PutRecords returning to the event being counted in
 * an API answer (event source mapping poll, speed handler, DynamoDB, API), one event at a time.
 */
export const freshnessBench: BenchSection = async ({ quick, log }) => {
  const stack = await startLocalStack({
    names: resourceNames('bench-fresh'),
    shards: 1,
    runBatchAtStart: false,
    batchIntervalMs: 3_600_000,
  });
  try {
    const samples = quick ? 15 : 60;
    const latencies: number[] = [];
    const total = async () => {
      const from = hourBucket(Date.now());
      const query = new URLSearchParams({
        from: toIso(from - HOUR_MS),
        to: toIso(from + HOUR_MS),
        granularity: 'hour',
      });
      const body = (await (
        await fetch(`${stack.apiUrl}/v1/pageviews?${query.toString()}`)
      ).json()) as PageViewsResponse;
      return body.total;
    };
    log(`freshness: ${samples} events, one at a time`);
    for (let i = 0; i < samples; i += 1) {
      const before = await total();
      const event = {
        created: Date.now(),
        url: 'http://www.example.com/fresh',
        status: 200,
        country: 'US',
        browser: 'CH',
        userId: String(i),
        site: DEFAULT_SETTINGS.defaultSite,
      };
      await putRecordsReliably(stack.clients.kinesis, stack.config.names.stream, [
        { data: new TextEncoder().encode(encodePageView(event)), partitionKey: String(i) },
      ]);
      const sent = performance.now();
      const deadline = Date.now() + 30_000;
      while ((await total()) <= before) {
        if (Date.now() > deadline) throw new Error('an event did not show up in the API within 30 s');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      latencies.push(performance.now() - sent);
    }
    const figures: BenchFigure[] = [50, 99].map((p) => ({
      section: 'e2e',
      metric: `freshness p${p}: PutRecords to counted in the API`,
      value: Math.round(percentile(latencies, p)),
      unit: 'ms',
      note: `${samples} events; the local mapping polls every 250 ms (Lambda polls each shard about once a second)`,
    }));
    return figures;
  } finally {
    await stack.stop();
  }
};

benchMain(import.meta.url, freshnessBench);
