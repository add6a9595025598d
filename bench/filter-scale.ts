import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients } from '../shared/aws-clients.js';
import { CubeRows, updateCubeDay } from '../shared/batch/cube.js';
import { publishHorizon } from '../shared/batch/state.js';
import { DIMENSIONS, dimensionValue, type PageView } from '../shared/event.js';
import { BlockBuilder } from '../shared/filters/block.js';
import { DEFAULT_SETTINGS, PREFIXES, resourceNames, type RuntimeConfig } from '../shared/resources.js';
import { DAY_MS, dayKey, HOUR_MS, hourPartitionPath } from '../shared/time.js';
import { duckdbConnection, sqlString } from '../local/duckdb.js';
import { startEmulators } from '../local/emulators.js';
import { provision } from '../local/provision.js';
import { filterAxis, synthesize, type Case } from './cardinality.js';
import { benchMain } from './support/cli.js';
import type { BenchFigure, BenchSection } from './support/types.js';

/**
 * The filter axis at a million urls a day (docs/filters.md), full run only:
 * `npm run bench -- --only filter-scale [--urls N]`. The cardinality axis's synthesis writes 31 days of events
 * (2 page views per url a day, Zipf-like); the filter cube is written from them by the batch layer's own writer
 * (shared/batch/cube.ts `updateCubeDay`, sorted parts and day manifests). Its rows are the `cube` rows of
 * hourly_views.sql for these events (every dimension and the visitor hash, counted), grouped here by DuckDB from the
 * raw objects: the local Athena stand-in's catch-up of 62 million events takes over an hour on two cores (the
 * cardinality section runs it). H is published at the end of the data, and the real API function answers the
 * filter axis's three queries over 1 h, 24 h, 7 d and 30 d ending at H, cold and warm, each checked against and
 * beside the naive full read of the raw objects in the same run.
 *
 * `BENCH_FILTER_DATA=DIR` reuses a folder that the cardinality synthesis wrote (dt=…/hour=…/); `BENCH_FILTER_DAYS`
 * keeps its last N days (8 covers 7 d).
 */

/** The hours of a synthesized folder, in order. */
function hoursIn(dir: string): number[] {
  const hours: number[] = [];
  for (const dt of readdirSync(dir).filter((d) => d.startsWith('dt=')))
    for (const hour of readdirSync(join(dir, dt)).filter((h) => h.startsWith('hour=')))
      hours.push(Date.parse(`${dt.slice(3)}T${hour.slice(5)}:00:00Z`));
  return hours.sort((a, b) => a - b);
}

export const filterScaleBench: BenchSection = async ({ quick, log, urls }) => {
  if (quick) {
    log('filter-scale: full run only (npm run bench -- --only filter-scale)');
    return [];
  }
  const c: Case = {
    urls: urls ?? 1_000_000,
    days: 31,
    eventsPerDay: Math.max(50_000, 2 * (urls ?? 1_000_000)),
  };
  const label = `${c.urls.toLocaleString('en-US')} urls/day`;
  const reuse = process.env.BENCH_FILTER_DATA;
  const dir = reuse && existsSync(reuse) ? reuse : mkdtempSync(join(tmpdir(), 'bench-fscale-'));
  const emulators = await startEmulators();
  const clients = createAwsClients(emulators);
  const figures: BenchFigure[] = [];
  try {
    if (dir !== reuse) {
      log(`filter-scale: ${label}: synthesizing ${(c.days * c.eventsPerDay).toLocaleString('en-US')} events`);
      await synthesize(c, Date.now() - (Date.now() % HOUR_MS) - c.days * DAY_MS, dir);
    }
    const all = hoursIn(dir);
    const end = all.at(-1)! + HOUR_MS;
    const days = Math.min(c.days, Number(process.env.BENCH_FILTER_DAYS ?? c.days));
    const start = end - days * DAY_MS;
    const hours = all.filter((h) => h >= start);
    const names = resourceNames(`bench-fscale-${c.urls}`);
    const config: RuntimeConfig = { names, settings: DEFAULT_SETTINGS };
    await provision(clients, names, { shards: 1 });
    const site = config.settings.defaultSite;

    // The master dataset, for the naive read.
    const landStarted = performance.now();
    for (const hour of hours) {
      const folder = join(dir, hourPartitionPath(hour));
      for (const file of readdirSync(folder))
        await clients.s3.send(
          new PutObjectCommand({
            Bucket: names.bucket,
            Key: `${PREFIXES.raw}${hourPartitionPath(hour)}/${file}`,
            Body: readFileSync(join(folder, file)),
          }),
        );
    }
    log(
      `filter-scale: ${label}: ${hours.length} hours landed in ${Math.round((performance.now() - landStarted) / 1000)} s`,
    );

    // The cube, day by day, as the batch run writes it.
    const defaults = new Map(DIMENSIONS.map((d) => [d, dimensionValue({ url: '' } as PageView, d)]));
    const cubeStarted = performance.now();
    const connection = await duckdbConnection();
    let rowsWritten = 0;
    try {
      for (let dayMs = start - (start % DAY_MS); dayMs < end; dayMs += DAY_MS) {
        const dayHours = hours.filter((h) => h >= dayMs && h < dayMs + DAY_MS);
        if (dayHours.length === 0) continue;
        const files = dayHours.flatMap((h) =>
          readdirSync(join(dir, hourPartitionPath(h))).map((f) => join(dir, hourPartitionPath(h), f)),
        );
        const reader = await connection.runAndReadAll(
          `SELECT CAST(floor(created / ${HOUR_MS}) AS BIGINT) * ${HOUR_MS} AS hour_ms, url, CAST(status AS VARCHAR) AS status,
             country, browser, userhash, count(*) AS n
           FROM read_parquet([${files.map(sqlString).join(', ')}])
           GROUP BY ALL`,
        );
        const rows = new CubeRows();
        for (const [hourMs, url, status, country, browser, hash, n] of reader.getRows()) {
          const key = Number(hourMs);
          let builder = rows.hours.get(key);
          if (!builder) rows.hours.set(key, (builder = new BlockBuilder()));
          const own: Record<string, string> = {
            url: String(url),
            status: String(status),
            country: String(country),
            browser: String(browser),
          };
          builder.add({
            values: DIMENSIONS.map((d) => own[d] ?? defaults.get(d)!),
            hash: Number(hash),
            count: Number(n),
          });
          rowsWritten += 1;
        }
        await updateCubeDay(
          {
            s3: clients.s3,
            bucket: names.bucket,
            documents: clients.documents,
            tableName: names.tables.batchViews,
          },
          dayMs,
          dayHours,
          rows,
          site,
        );
        log(`filter-scale: ${label}: cube of ${dayKey(dayMs)} written`);
      }
    } finally {
      connection.closeSync();
    }
    const cubeSeconds = (performance.now() - cubeStarted) / 1000;
    await publishHorizon(
      { documents: clients.documents, tableName: names.tables.batchState },
      {
        horizonMs: end,
        version: 'filter-scale',
        publishedAtMs: Date.now(),
        computedFromMs: start,
        computedToMs: end,
      },
    );
    figures.push({
      section: 'filter-scale',
      metric: `${label}: cube rows written`,
      value: rowsWritten,
      unit: 'rows',
      note: `${hours.length} hours of ${c.eventsPerDay.toLocaleString('en-US')} events/day, ${Math.round(cubeSeconds)} s (sort, encode and write)`,
    });

    const mid = `https://shop.example/p/${Math.max(2, Math.round(Math.sqrt(c.urls)))}`;
    const ranges: [string, number][] = (
      [
        ['1 h', HOUR_MS],
        ['24 h', DAY_MS],
        ['7 d', 7 * DAY_MS],
        ['30 d', 30 * DAY_MS],
      ] as [string, number][]
    ).filter(([, length]) => length <= days * DAY_MS);
    for (const [span, length] of ranges) {
      // Fewer runs over 30 days: one that reads every part (a url filter) takes tens of seconds.
      const runs = length > 7 * DAY_MS ? { cold: 3, warm: 3 } : { cold: 5, warm: 10 };
      figures.push(
        ...(await filterAxis(clients, config, label, span, { fromMs: end - length, toMs: end }, mid, {
          ...runs,
          section: 'filter-scale',
        })),
      );
      log(`filter-scale: ${label}: ${span} done`);
    }
    return figures;
  } finally {
    clients.destroy();
    await emulators.stop();
    if (dir !== reuse) rmSync(dir, { recursive: true, force: true });
  }
};

benchMain(import.meta.url, filterScaleBench);
