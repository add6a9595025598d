import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createApiHandler } from '../lambdas/api/handler.js';
import { readersFor } from '../shared/serving/readers.js';
import { createCatalogHandler, objectCreatedEvent } from '../lambdas/catalog/handler.js';
import { createBatchHandler } from '../lambdas/batch/handler.js';
import { createSpeedHandler } from '../lambdas/speed/handler.js';
import { createAwsClients } from '../shared/aws-clients.js';
import type { PageView } from '../shared/event.js';
import { PageViewGenerator } from '../traffic/generator.js';
import { DEFAULT_SETTINGS, PREFIXES, resourceNames, type RuntimeConfig } from '../shared/resources.js';
import { DAY_MS, HOUR_MS, hourBucket, hourPartitionPath, toIso } from '../shared/time.js';
import { createDuckDbEngine } from '../local/athena-duckdb.js';
import { startEmulators } from '../local/emulators.js';
import { startHttpApi } from '../local/http-server.js';
import { KinesisRecordBuilder } from '../local/kinesis-records.js';
import { asRecords, parquetBytes } from '../local/parquet.js';
import { provision } from '../local/provision.js';
import { benchMain } from './support/cli.js';
import { percentile } from './support/stats.js';
import type { BenchFigure, BenchSection } from './support/types.js';

/**
 * Serving layer: latency of typical queries over HTTP on the local stack (a week of batch views, speed counters
 * from H on), and the DynamoDB requests one query costs with a cold and a warm batch-view cache.
 */
export const apiBench: BenchSection = async ({ quick, log }) => {
  const emulators = await startEmulators();
  const clients = createAwsClients(emulators);
  try {
    const names = resourceNames('bench-api');
    const config: RuntimeConfig = { names, settings: { ...DEFAULT_SETTINGS, firehoseBufferSeconds: 60 } };
    await provision(clients, names, { shards: 1 });
    const now = Date.now();
    const start = hourBucket(now) - 7 * DAY_MS - 2 * HOUR_MS;
    const events = [
      ...new PageViewGenerator({ seed: 9, startMs: start, rate: 0.5, urlCount: 20 }).take(
        Math.floor(((now - 60_000 - start) / 1000) * 0.5),
      ),
    ].map((r) => r.event!);

    // The master dataset: one Parquet object per hour, as Firehose lands it.
    const hours = new Map<string, PageView[]>();
    for (const event of events) {
      const key = hourPartitionPath(event.created);
      hours.set(key, [...(hours.get(key) ?? []), event]);
    }
    const catalog = createCatalogHandler({ clients, config });
    for (const [partition, batch] of hours) {
      const key = `${PREFIXES.raw}${partition}/part.parquet`;
      await clients.s3.send(
        new PutObjectCommand({
          Bucket: names.bucket,
          Key: key,
          Body: await parquetBytes(asRecords(batch, partition)),
        }),
      );
      await catalog(objectCreatedEvent(names.bucket, key));
    }
    const engine = createDuckDbEngine({
      s3: clients.s3,
      bucket: names.bucket,
      cacheDir: mkdtempSync(join(tmpdir(), 'bench-api-')),
    });
    const run = await createBatchHandler({ clients, config, engine })();
    const horizon = run.horizon!.horizonMs;
    log(`api: ${events.length} events; batch views published up to H = ${toIso(horizon)}`);

    // Speed counters for what the speed layer serves: event time from H on.
    const shard = new KinesisRecordBuilder();
    const recent = events
      .filter((e) => e.created >= horizon)
      .map((e) => shard.record(JSON.stringify(e), now));
    const speed = createSpeedHandler({ clients, config });
    for (let i = 0; i < recent.length; i += 1000) await speed({ Records: recent.slice(i, i + 1000) });
    log(`api: ${recent.length} events counted by the speed layer`);

    let requests = 0;
    const server = await startHttpApi({
      handler: createApiHandler({
        ...readersFor(clients, config, () => (requests += 1)),
        retentionHours: config.settings.speedRetentionHours,
      }),
    });
    try {
      const end = hourBucket(now) + HOUR_MS;
      const ranges = [
        ['1-hour', end - HOUR_MS],
        ['24-hour', end - DAY_MS],
        ['7-day', end - 7 * DAY_MS],
      ] as const;
      const samples = quick ? 30 : 200;
      const figures: BenchFigure[] = [];
      for (const [label, from] of ranges) {
        const shapes: { name: string; params: Record<string, string> }[] = [
          { name: label, params: {} },
          { name: `${label} by url`, params: { by: 'url' } },
          // Visitors: sketches merged across buckets and the split at H, and per breakdown value.
          ...(label === '1-hour'
            ? []
            : [
                { name: `${label} metrics=visitors`, params: { metrics: 'visitors' } },
                { name: `${label} by url, metrics=visitors`, params: { by: 'url', metrics: 'visitors' } },
              ]),
        ];
        for (const { name, params } of shapes) {
          const query = new URLSearchParams({
            from: toIso(from),
            to: toIso(end),
            granularity: 'hour',
            ...params,
          });
          const url = `${server.url}/v1/pageviews?${query.toString()}`;
          // A fresh handler per query shape would reset the cache; instead the first call here is the cold one.
          const before = requests;
          const first = await fetch(url);
          if (first.status !== 200) throw new Error(`${url} answered ${first.status}: ${await first.text()}`);
          await first.json();
          const cold = requests - before;
          const latencies: number[] = [];
          const warmBefore = requests;
          for (let i = 0; i < samples; i += 1) {
            const started = performance.now();
            const response = await fetch(url);
            await response.json();
            latencies.push(performance.now() - started);
          }
          const warm = (requests - warmBefore) / samples;
          for (const p of [50, 99]) {
            figures.push({
              section: 'api',
              metric: `${name}: latency p${p} over HTTP`,
              value: Number(percentile(latencies, p).toFixed(2)),
              unit: 'ms',
              note: `${samples} sequential warm requests`,
            });
          }
          figures.push({
            section: 'api',
            metric: `${name}: requests per query (cold / warm cache)`,
            value: cold,
            unit: 'requests',
            note: `warm: ${warm.toFixed(1)}; DynamoDB queries and view-store GETs (immutable objects stay cached)`,
          });
        }
      }
      return figures;
    } finally {
      await server.close();
    }
  } finally {
    clients.destroy();
    await emulators.stop();
  }
};

benchMain(import.meta.url, apiBench);
