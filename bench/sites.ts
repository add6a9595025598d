import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createBatchHandler } from '../lambdas/batch/handler.js';
import { createCatalogHandler, objectCreatedEvent } from '../lambdas/catalog/handler.js';
import { createAwsClients } from '../shared/aws-clients.js';
import { DEFAULT_SETTINGS, PREFIXES, resourceNames, type RuntimeConfig } from '../shared/resources.js';
import { DAY_MS, dayBucket, HOUR_MS, hourBucket, hourPartitionPath, MINUTE_MS } from '../shared/time.js';
import { createDuckDbEngine } from '../local/athena-duckdb.js';
import { startEmulators } from '../local/emulators.js';
import { asRecords, parquetBytes } from '../local/parquet.js';
import { provision } from '../local/provision.js';
import { generatedSites, PageViewGenerator } from '../traffic/generator.js';
import { benchMain } from './support/cli.js';
import type { BenchFigure, BenchSection } from './support/types.js';

/**
 * What sites cost the batch layer (docs/sites.md): one batch run of one new hour, the same traffic (the same seed,
 * urls and visitors) counted for one site, as before sites, and spread over several. The raw data is partitioned
 * by time only, so the run reads the same Parquet; the view store keeps a day per site and dimension, so its
 * requests and bytes grow with the sites that have traffic in the hour.
 */

/** Events per hour. */
const EVENTS = 20_000;
const URLS = 1_000;
const SITE_COUNTS = [1, 4, 16] as const;

interface RunCost {
  readonly parquetBytes: number;
  readonly requests: number;
  readonly puts: number;
  readonly gets: number;
  readonly bytes: number;
  readonly totalRows: number;
  readonly objects: number;
}

export const sitesBench: BenchSection = async ({ log }) => {
  const emulators = await startEmulators();
  const clients = createAwsClients(emulators);
  const costs = new Map<number, RunCost>();
  try {
    for (const count of SITE_COUNTS) {
      const sites = generatedSites(count);
      const names = resourceNames(`bench-sites-${count}`);
      const settings = { ...DEFAULT_SETTINGS, firehoseBufferSeconds: 60, sites };
      const config: RuntimeConfig = { names, settings };
      await provision(clients, names, { shards: 1 });
      // Two hours of one day: the first run builds the day, the measured one folds in the next hour.
      const first = dayBucket(Date.now()) - DAY_MS + 10 * HOUR_MS;
      const events = [
        ...new PageViewGenerator({
          seed: 11,
          startMs: first,
          rate: EVENTS / 3600,
          urlCount: URLS,
          sites,
        }).take(2 * EVENTS),
      ].map((r) => r.event!);
      const catalog = createCatalogHandler({ clients, config });
      const land = async (hour: number) => {
        const key = `${PREFIXES.raw}${hourPartitionPath(hour)}/part.parquet`;
        const rows = asRecords(events.filter((e) => hourBucket(e.created) === hour));
        await clients.s3.send(
          new PutObjectCommand({ Bucket: names.bucket, Key: key, Body: await parquetBytes(rows) }),
        );
        await catalog(objectCreatedEvent(names.bucket, key));
      };
      const dir = mkdtempSync(join(tmpdir(), 'bench-sites-'));
      try {
        const engine = createDuckDbEngine({ s3: clients.s3, bucket: names.bucket, cacheDir: dir });
        const io = { requests: 0, puts: 0, gets: 0, bytes: 0 };
        const runAfter = (hour: number) =>
          createBatchHandler({
            clients,
            config,
            engine,
            clock: () => hour + HOUR_MS + settings.firehoseBufferSeconds * 1000 + 5 * MINUTE_MS + 1,
            onViewRequest: (request) => {
              io.requests += 1;
              io.bytes += request.bytes ?? 0;
              if (request.kind === 'put') io.puts += 1;
              if (request.kind === 'get') io.gets += 1;
            },
          })();
        await land(first);
        await runAfter(first);
        await land(first + HOUR_MS);
        Object.assign(io, { requests: 0, puts: 0, gets: 0, bytes: 0 });
        const scanned = engine.stats.bytesScanned;
        const run = await runAfter(first + HOUR_MS);
        if (run.hours !== 1)
          throw new Error(`sites bench: the measured run computed ${run.hours} hours, not 1`);
        costs.set(count, {
          parquetBytes: engine.stats.bytesScanned - scanned,
          ...io,
          totalRows: run.rowsWritten,
          objects: run.objectsWritten,
        });
        log(
          `sites: ${count} site(s): ${run.rowsWritten} total rows, ${run.objectsWritten} view objects, ${io.requests} view-store requests`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await emulators.stop();
  }
  const today = costs.get(1)!;
  const figures: BenchFigure[] = [];
  for (const count of SITE_COUNTS.slice(1)) {
    const cost = costs.get(count)!;
    const at = `${count} sites (${EVENTS.toLocaleString('en-US')} events, ${URLS.toLocaleString('en-US')} urls in the hour)`;
    figures.push(
      {
        section: 'sites',
        metric: `batch run of one new hour over ${at}: view-store requests`,
        value: cost.requests,
        unit: 'requests',
        baseline: today.requests,
        ratio: cost.requests / today.requests,
        note: `${cost.puts} PUTs and ${cost.gets} GETs (one site: ${today.puts} and ${today.gets}); baseline: the same traffic as one site; ratio = sites / one site`,
      },
      {
        section: 'sites',
        metric: `batch run of one new hour over ${at}: rows + objects written`,
        value: cost.totalRows + cost.objects,
        unit: 'writes',
        baseline: today.totalRows + today.objects,
        ratio: (cost.totalRows + cost.objects) / (today.totalRows + today.objects),
        note: `${cost.totalRows} total rows, ${cost.objects} view objects and manifests (one site: ${today.totalRows} and ${today.objects})`,
      },
      {
        section: 'sites',
        metric: `batch run of one new hour over ${at}: view-store bytes moved`,
        value: cost.bytes,
        unit: 'bytes',
        baseline: today.bytes,
        ratio: cost.bytes / Math.max(1, today.bytes),
        note: 'gzip bytes of the view objects the run wrote and read back (the day rebuilt around the new hour)',
      },
      {
        section: 'sites',
        metric: `batch run of one new hour over ${at}: Parquet bytes read`,
        value: cost.parquetBytes,
        unit: 'bytes',
        baseline: today.parquetBytes,
        ratio: cost.parquetBytes / today.parquetBytes,
        note: 'raw/ is partitioned by time only: one scan serves every site (the site is a column)',
      },
    );
  }
  return figures;
};

benchMain(import.meta.url, sitesBench);
