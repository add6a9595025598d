import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createApiHandler } from '../lambdas/api/handler.js';
import { readersFor } from '../shared/serving/readers.js';
import type { PageViewsResponse } from '../shared/api-types.js';
import { createBatchHandler } from '../lambdas/batch/handler.js';
import { createCatalogHandler, objectCreatedEvent } from '../lambdas/catalog/handler.js';
import { createAwsClients, type AwsClients } from '../shared/aws-clients.js';
import { createBatchReader } from '../shared/batch/reader.js';
import { hourRuns, type RunSummary } from '../shared/batch/run.js';
import { DEFAULT_SETTINGS, PREFIXES, resourceNames, type RuntimeConfig } from '../shared/resources.js';
import { collectRows } from '../shared/sql/index.js';
import {
  DAY_MS,
  dayBucket,
  HOUR_MS,
  hourBucket,
  hourPartitionPath,
  MINUTE_MS,
  toIso,
} from '../shared/time.js';
import { apiEvent } from '../local/api-events.js';
import { createDuckDbEngine, type DuckDbEngine } from '../local/athena-duckdb.js';
import { duckdbConnection, sqlString } from '../local/duckdb.js';
import { startEmulators } from '../local/emulators.js';
import { provision } from '../local/provision.js';
import { benchMain } from './support/cli.js';
import { percentile } from './support/stats.js';
import type { BenchFigure, BenchSection } from './support/types.js';

/**
 * The cardinality axis: distinct urls per day from 100 to 1M (Zipf-like), against the real batch run, view
 * store and API on the local emulators. The master dataset is written straight to S3 (DuckDB synthesizes it;
 * the local speed path is bound by DynamoDB Local), then batch runs catch up, one more hour lands, and the
 * API answers `by=url&top=10` over 1 h, 24 h, 7 d and 30 d ending at H, cold (a fresh function) and warm.
 * Naive baselines beside each figure: the previous design's batch work (recompute and rewrite a 6-hour
 * trailing window every run) and a breakdown that reads every value of the range.
 */

export interface Case {
  readonly urls: number;
  readonly days: number;
  readonly eventsPerDay: number;
}

/** The axis; `urls` (`--urls 1000000`) keeps one cardinality of it. */
const cases = (quick: boolean, urls: number | undefined): Case[] =>
  (quick
    ? [100, 10_000, 100_000].map((urls) => ({ urls, days: 8, eventsPerDay: Math.max(20_000, urls) }))
    : [100, 10_000, 100_000, 1_000_000].map((urls) => ({
        urls,
        days: 31,
        eventsPerDay: Math.max(50_000, 2 * urls),
      }))
  ).filter((c) => urls === undefined || c.urls === urls);

/** Writes `days` of synthetic events as hourly Parquet partitions (`dt=…/hour=…/`) into a folder. */
export async function synthesize(c: Case, startMs: number, dir: string): Promise<void> {
  const connection = await duckdbConnection();
  try {
    const n = c.days * c.eventsPerDay;
    const spacing = DAY_MS / c.eventsPerDay;
    await connection.run('SELECT setseed(0.17)');
    // url ids log-uniform on [1, urls): P(id = k) ∝ 1/k, a Zipf law with exponent 1.
    await connection.run(`COPY (
      SELECT created,
        'https://shop.example/p/' || CAST(floor(exp(random() * ln(${c.urls}))) AS BIGINT) AS url,
        CASE WHEN random() < 0.92 THEN 200 WHEN random() < 0.6 THEN 404 ELSE 500 END AS status,
        ['US','IN','GB','DE','BR','FR','JP','CA','ES','IT','ZZ'][1 + CAST(floor(random() * 11) AS INTEGER)] AS country,
        ['CH','SF','FF','ED','OP'][1 + CAST(floor(random() * 5) AS INTEGER)] AS browser,
        userid,
        -- userHash (shared/sketch): the top 52 bits of SHA-256 of the user id.
        CAST(('0x' || substr(sha256(userid), 1, 13)) AS BIGINT) AS userhash,
        CAST(NULL AS VARCHAR) AS eventid,
        'shardId-000000000000' AS shardid,
        CAST(i AS VARCHAR) AS sequencenumber,
        strftime(make_timestamp(created * 1000), '%Y-%m-%d') AS dt,
        strftime(make_timestamp(created * 1000), '%H') AS hour
      FROM (
        SELECT i, ${startMs} + CAST(floor(i * ${spacing}) AS BIGINT) AS created,
          CAST(CAST(floor(random() * 1000000) AS BIGINT) AS VARCHAR) AS userid
        FROM range(${n}) t(i)
      )
    ) TO ${sqlString(dir)} (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (dt, hour))`);
  } finally {
    connection.closeSync();
  }
}

/** Uploads the partitions of [fromMs, toMs) and sends S3's Object Created notifications for them. */
async function land(
  clients: AwsClients,
  config: RuntimeConfig,
  dir: string,
  fromMs: number,
  toMs: number,
): Promise<void> {
  const catalog = createCatalogHandler({ clients, config });
  for (let hour = fromMs; hour < toMs; hour += HOUR_MS) {
    const folder = join(dir, hourPartitionPath(hour));
    let files: string[];
    try {
      files = readdirSync(folder);
    } catch {
      continue;
    }
    for (const file of files) {
      const key = `${PREFIXES.raw}${hourPartitionPath(hour)}/${file}`;
      await clients.s3.send(
        new PutObjectCommand({
          Bucket: config.names.bucket,
          Key: key,
          Body: readFileSync(join(folder, file)),
        }),
      );
      await catalog(objectCreatedEvent(config.names.bucket, key));
    }
  }
}

interface Accounting {
  requests: number;
  bytes: number;
}

const account = (into: Accounting) => (request: { kind: string; bytes?: number }) => {
  into.requests += 1;
  into.bytes += request.bytes ?? 0;
};

/** One answer of the API function, timed, with what it read; `filters` go in as repeated parameters. */
async function timedQuery(
  clients: AwsClients,
  config: RuntimeConfig,
  query: Record<string, string>,
  handler?: ReturnType<typeof createApiHandler>,
  filters: readonly string[] = [],
) {
  const used: Accounting = { requests: 0, bytes: 0 };
  const api =
    handler ??
    createApiHandler({
      ...readersFor(clients, config, account(used)),
      retentionHours: config.settings.speedRetentionHours,
    });
  const event = apiEvent('/v1/pageviews', query);
  const search = new URLSearchParams(event.rawQueryString);
  for (const filter of filters) search.append('filter', filter);
  const started = performance.now();
  const result = await api({ ...event, rawQueryString: search.toString() });
  const ms = performance.now() - started;
  if (result.statusCode !== 200) throw new Error(`query answered ${result.statusCode}: ${result.body}`);
  return { ms, used, api, body: result.body! };
}

/** The naive breakdown: read every value of every day of the range and aggregate them all. */
async function naiveBreakdown(clients: AwsClients, config: RuntimeConfig, fromMs: number, toMs: number) {
  const used: Accounting = { requests: 0, bytes: 0 };
  const reader = createBatchReader({
    documents: clients.documents,
    s3: clients.s3,
    bucket: config.names.bucket,
    viewsTable: config.names.tables.batchViews,
    stateTable: config.names.tables.batchState,
    onRequest: account(used),
  });
  const started = performance.now();
  const horizon = (await reader.readHorizon())!;
  const totals = new Map<string, number>();
  // One day at a time, so that only the range's totals and one day's rows are held at once
  // (at 1M urls/day, 30 days of hourly rows do not fit in a 4 GB heap).
  for (let dayMs = dayBucket(fromMs); dayMs < toMs; dayMs += DAY_MS) {
    const source = await reader.breakdown(
      DEFAULT_SETTINGS.defaultSite,
      'url',
      Math.max(fromMs, dayMs),
      Math.min(toMs, dayMs + DAY_MS),
      horizon,
    );
    const values: string[] = [];
    for (const block of source.blocks)
      for (const [value] of (await block.read(Number.MAX_SAFE_INTEGER)).rows) values.push(value);
    for (const row of await source.rows(values))
      totals.set(row.value, (totals.get(row.value) ?? 0) + row.count);
  }
  const top = [...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 10);
  return { ms: performance.now() - started, used, top };
}

/** A filtered query of the filter axis: its name, its parameters, and the SQL of its naive full read. */
interface FilterShape {
  readonly name: string;
  readonly query: Record<string, string>;
  readonly filters: readonly string[];
  /** The breakdown and WHERE clause over the raw master dataset (the synthesized columns). */
  readonly by: 'url' | 'country';
  readonly where: string;
}

const filterShapes = (mid: string): FilterShape[] => [
  {
    name: 'by=url&filter=country:DE',
    query: { by: 'url' },
    filters: ['country:DE'],
    by: 'url',
    where: `country = 'DE'`,
  },
  {
    name: 'by=country&filter=url:<mid-ranked url>',
    query: { by: 'country' },
    filters: [`url:${mid}`],
    by: 'country',
    where: `url = ${sqlString(mid)}`,
  },
  {
    name: 'by=url&filter=country:DE&filter=browser:FF',
    query: { by: 'url' },
    filters: ['country:DE', 'browser:FF'],
    by: 'url',
    where: `country = 'DE' AND browser = 'FF'`,
  },
];

/**
 * The naive full read of a filtered query: every raw Parquet object of the range fetched from S3 and aggregated by
 * DuckDB with the filter as SQL (the seed's serving layer ran SQL over Parquet), in the same run as ours.
 */
async function naiveFilteredRead(
  clients: AwsClients,
  config: RuntimeConfig,
  shape: FilterShape,
  fromMs: number,
  toMs: number,
) {
  const used: Accounting = { requests: 0, bytes: 0 };
  const dir = mkdtempSync(join(tmpdir(), 'bench-naive-'));
  const started = performance.now();
  try {
    const files: string[] = [];
    for (let hour = fromMs; hour < toMs; hour += HOUR_MS) {
      const listed = await clients.s3.send(
        new ListObjectsV2Command({
          Bucket: config.names.bucket,
          Prefix: `${PREFIXES.raw}${hourPartitionPath(hour)}/`,
        }),
      );
      used.requests += 1;
      for (const object of listed.Contents ?? []) {
        const body = await (
          await clients.s3.send(new GetObjectCommand({ Bucket: config.names.bucket, Key: object.Key }))
        ).Body!.transformToByteArray();
        used.requests += 1;
        used.bytes += body.length;
        const file = join(dir, `${files.length}.parquet`);
        writeFileSync(file, body);
        files.push(file);
      }
    }
    const connection = await duckdbConnection();
    try {
      const rows = (
        await connection.runAndReadAll(
          `SELECT ${shape.by} AS v, count(*) AS n FROM read_parquet([${files.map(sqlString).join(', ')}])
           WHERE ${shape.where} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10`,
        )
      ).getRowObjects();
      return { ms: performance.now() - started, used, top: rows.map((r) => [String(r.v), Number(r.n)]) };
    } finally {
      connection.closeSync();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The filter axis of one case and range: cold and warm p50/p99 (over `runs` fresh and warm functions) with what was
 * read, beside the naive full read.
 */
export async function filterAxis(
  clients: AwsClients,
  config: RuntimeConfig,
  label: string,
  span: string,
  range: { fromMs: number; toMs: number },
  mid: string,
  runs: { readonly cold: number; readonly warm: number; readonly section?: string },
): Promise<BenchFigure[]> {
  const section = runs.section ?? 'cardinality';
  const figures: BenchFigure[] = [];
  for (const shape of filterShapes(mid)) {
    const query = {
      from: toIso(range.fromMs),
      to: toIso(range.toMs),
      granularity: 'hour',
      top: '10',
      ...shape.query,
    };
    const colds: number[] = [];
    let coldUse: Accounting = { requests: 0, bytes: 0 };
    for (let i = 0; i < runs.cold; i += 1) {
      const cold = await timedQuery(clients, config, query, undefined, shape.filters);
      colds.push(cold.ms);
      coldUse = cold.used;
    }
    const first = await timedQuery(clients, config, query, undefined, shape.filters);
    const warms: number[] = [];
    for (let i = 0; i < runs.warm; i += 1)
      warms.push((await timedQuery(clients, config, query, first.api, shape.filters)).ms);
    const naive = await naiveFilteredRead(clients, config, shape, range.fromMs, range.toMs);
    // The figures count only if the answer is exact: the top 10 of the full read.
    const answered = (JSON.parse(first.body) as PageViewsResponse)
      .breakdown!.filter((b) => b.value !== 'other')
      .map((b) => [b.value, b.total]);
    if (JSON.stringify(answered) !== JSON.stringify(naive.top))
      throw new Error(
        `${label} ${shape.name} over ${span}: ${JSON.stringify(answered)} != ${JSON.stringify(naive.top)}`,
      );
    const metric = `${label}: ${shape.name} over ${span}`;
    figures.push(
      {
        section,
        metric: `${metric}, cold p50 / p99`,
        value: Math.round(percentile(colds, 50)),
        unit: 'ms',
        baseline: Math.round(naive.ms),
        ratio: naive.ms / percentile(colds, 50),
        note: `cold p99 ${Math.round(percentile(colds, 99))} ms over ${colds.length} fresh functions; baseline: the naive full read (every raw object of the range, DuckDB); ratio = naive / ours`,
      },
      {
        section,
        metric: `${metric}, warm p50 / p99`,
        value: Math.round(percentile(warms, 50) * 10) / 10,
        unit: 'ms',
        note: `warm p99 ${Math.round(percentile(warms, 99) * 10) / 10} ms over ${warms.length} requests (cube hours cached in the function)`,
      },
      {
        section,
        metric: `${metric}, bytes read cold`,
        value: coldUse.bytes,
        unit: 'bytes',
        baseline: naive.used.bytes,
        ratio: naive.used.bytes / Math.max(1, coldUse.bytes),
        note: `${coldUse.requests} requests (S3 GETs and DynamoDB queries) vs ${naive.used.requests} for the naive full read; ratio = naive / ours`,
      },
    );
  }
  return figures;
}

async function runUntilCaughtUp(batch: () => Promise<RunSummary>): Promise<{ runs: number; hours: number }> {
  let runs = 0;
  let hours = 0;
  for (;;) {
    const summary = await batch();
    runs += 1;
    hours += summary.hours;
    if (summary.hours === 0) return { runs, hours };
  }
}

export const cardinalityBench: BenchSection = async ({ quick, log, urls }) => {
  const emulators = await startEmulators();
  const clients = createAwsClients(emulators);
  const figures: BenchFigure[] = [];
  try {
    for (const c of cases(quick, urls)) {
      const label = `${c.urls.toLocaleString('en-US')} urls/day`;
      const names = resourceNames(`bench-card-${c.urls}`);
      const config: RuntimeConfig = { names, settings: { ...DEFAULT_SETTINGS, firehoseBufferSeconds: 60 } };
      await provision(clients, names, { shards: 1 });
      const end = hourBucket(Date.now()) - HOUR_MS;
      const start = end - c.days * DAY_MS;
      const dir = mkdtempSync(join(tmpdir(), 'bench-card-'));
      try {
        log(
          `cardinality: ${label}: synthesizing ${(c.days * c.eventsPerDay).toLocaleString('en-US')} events`,
        );
        await synthesize(c, start, dir);
        const lastHour = end - HOUR_MS;
        await land(clients, config, dir, start, lastHour);
        const engine: DuckDbEngine = createDuckDbEngine({
          s3: clients.s3,
          bucket: names.bucket,
          cacheDir: join(dir, 'cache'),
        });
        const viewIo: Accounting = { requests: 0, bytes: 0 };
        const batchAt = (nowMs: number) =>
          createBatchHandler({
            clients,
            config,
            engine,
            clock: () => nowMs + config.settings.firehoseBufferSeconds * 1000 + 5 * MINUTE_MS + 1,
            onViewRequest: account(viewIo),
          });
        const catchUpStarted = performance.now();
        const caughtUp = await runUntilCaughtUp(() => batchAt(lastHour)());
        const catchUpMs = performance.now() - catchUpStarted;
        log(
          `cardinality: ${label}: ${caughtUp.hours} hours caught up in ${caughtUp.runs} runs, ${Math.round(catchUpMs)} ms`,
        );

        // Steady state: one more hour lands and the next run folds it in.
        await land(clients, config, dir, lastHour, end);
        const scanned = engine.stats.bytesScanned;
        const io = { ...viewIo };
        const steady = await batchAt(end)();
        const runBytes = engine.stats.bytesScanned - scanned;
        const idle = await batchAt(end)();
        // The previous design, measured on the same data: recompute the 6-hour trailing window plus the new
        // hour, and rewrite every row it yields.
        const windowHours = Array.from({ length: 7 }, (_, i) => end - (7 - i) * HOUR_MS);
        const before = engine.stats.bytesScanned;
        let naiveRows = 0;
        for (const run of hourRuns(windowHours)) {
          const partitions = run.hours.map((h) => hourPartitionPath(h));
          naiveRows += (
            await collectRows(
              engine.query(
                'hourly_views',
                [DEFAULT_SETTINGS.defaultSite, run.dt, run.fromHour, run.toHour],
                partitions,
              ),
            )
          ).length;
        }
        const naiveBytes = engine.stats.bytesScanned - before;
        const distinct = await distinctUrls(dir, dayBucket(lastHour) - DAY_MS);
        figures.push(
          {
            section: 'cardinality',
            metric: `${label}: distinct urls in a day (measured)`,
            value: distinct,
            unit: 'urls',
            note: `${c.eventsPerDay.toLocaleString('en-US')} events/day over ${c.days} days; catch-up: ${caughtUp.hours} hours in ${caughtUp.runs} runs, ${Math.round(catchUpMs / 1000)} s`,
          },
          {
            section: 'cardinality',
            metric: `${label}: batch run for one new hour, rows + objects written`,
            value: steady.rowsWritten + steady.objectsWritten,
            unit: 'writes',
            baseline: naiveRows,
            ratio: naiveRows / Math.max(1, steady.rowsWritten + steady.objectsWritten),
            note: `${steady.rowsWritten} total rows, ${steady.objectsWritten} view objects (${Math.round((viewIo.bytes - io.bytes) / 1024)} KiB moved); baseline: the previous design rewrote every row of a 6 h trailing window + 1 h; ratio = naive / ours`,
          },
          {
            section: 'cardinality',
            metric: `${label}: Parquet bytes read by that run`,
            value: runBytes,
            unit: 'bytes',
            baseline: naiveBytes,
            ratio: naiveBytes / Math.max(1, runBytes),
            note: 'baseline: the 6 h trailing window + 1 h the previous design recomputed (the partitions of that day)',
          },
          {
            section: 'cardinality',
            metric: `${label}: batch run with nothing new, view writes`,
            value: idle.rowsWritten + idle.objectsWritten,
            unit: 'writes',
            note: `${idle.hours} hours computed; only the run's bookkeeping (horizon, lease, last run) is written`,
          },
        );

        const ranges: [string, number][] = [
          ['1 h', HOUR_MS],
          ['24 h', DAY_MS],
          ['7 d', 7 * DAY_MS],
          ...(quick ? [] : ([['30 d', 30 * DAY_MS]] as [string, number][])),
        ];
        for (const [span, length] of ranges) {
          const query = {
            from: toIso(end - length),
            to: toIso(end),
            granularity: 'hour',
            by: 'url',
            top: '10',
          };
          const colds: number[] = [];
          let coldUse: Accounting = { requests: 0, bytes: 0 };
          for (let i = 0; i < (quick ? 3 : 7); i += 1) {
            const cold = await timedQuery(clients, config, query);
            colds.push(cold.ms);
            coldUse = cold.used;
          }
          const first = await timedQuery(clients, config, query);
          const warms: number[] = [];
          for (let i = 0; i < (quick ? 20 : 100); i += 1)
            warms.push((await timedQuery(clients, config, query, first.api)).ms);
          const naive = await naiveBreakdown(clients, config, end - length, end);
          // The figures count only if the answer is exact: the top 10 of a full aggregation.
          const answered = (JSON.parse(first.body) as PageViewsResponse)
            .breakdown!.filter((b) => b.value !== 'other')
            .map((b) => [b.value, b.total]);
          if (JSON.stringify(answered) !== JSON.stringify(naive.top)) {
            throw new Error(
              `${label} over ${span}: top 10 ${JSON.stringify(answered)} != ${JSON.stringify(naive.top)}`,
            );
          }
          figures.push(
            {
              section: 'cardinality',
              metric: `${label}: by=url&top=10 over ${span}, cold p50 / p99`,
              value: Math.round(percentile(colds, 50) * 10) / 10,
              unit: 'ms',
              baseline: Math.round(naive.ms),
              ratio: naive.ms / percentile(colds, 50),
              note: `cold p99 ${Math.round(percentile(colds, 99))} ms over ${colds.length} fresh functions; baseline: read and rank every url of the range (cold); ratio = naive / ours`,
            },
            {
              section: 'cardinality',
              metric: `${label}: by=url&top=10 over ${span}, warm p50 / p99`,
              value: Math.round(percentile(warms, 50) * 10) / 10,
              unit: 'ms',
              note: `warm p99 ${Math.round(percentile(warms, 99) * 10) / 10} ms over ${warms.length} requests`,
            },
            {
              section: 'cardinality',
              metric: `${label}: by=url&top=10 over ${span}, bytes read cold`,
              value: coldUse.bytes,
              unit: 'bytes',
              baseline: naive.used.bytes,
              ratio: naive.used.bytes / Math.max(1, coldUse.bytes),
              note: `${coldUse.requests} requests (S3 GETs and DynamoDB queries) vs ${naive.used.requests} for the naive read; ratio = naive / ours`,
            },
          );
          log(
            `cardinality: ${label}: ${span}: cold p50 ${Math.round(percentile(colds, 50))} ms, naive ${Math.round(naive.ms)} ms`,
          );
          // The filter axis: the quick bench keeps 100,000 urls/day over 24 h and 7 d; the full one every case and range.
          if (!quick || (c.urls === 100_000 && length >= DAY_MS && length <= 7 * DAY_MS)) {
            const mid = `https://shop.example/p/${Math.max(2, Math.round(Math.sqrt(c.urls)))}`;
            figures.push(
              ...(await filterAxis(
                clients,
                config,
                label,
                span,
                { fromMs: end - length, toMs: end },
                mid,
                quick ? { cold: 2, warm: 5 } : { cold: 7, warm: 30 },
              )),
            );
            log(`cardinality: ${label}: ${span}: filter axis done`);
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    clients.destroy();
    await emulators.stop();
  }
  return figures;
};

/** Distinct urls in the day starting at `dayMs`, counted from the synthesized files. */
async function distinctUrls(dir: string, dayMs: number): Promise<number> {
  const connection = await duckdbConnection();
  try {
    const day = join(dir, `dt=${toIso(dayMs).slice(0, 10)}`);
    if (statSync(day, { throwIfNoEntry: false }) === undefined) return 0;
    const glob = join(day, '*', '*.parquet');
    const result = await connection.runAndReadAll(
      `SELECT count(DISTINCT url) AS n FROM read_parquet(${sqlString(glob)})`,
    );
    return Number(result.getRowObjects()[0]!.n);
  } finally {
    connection.closeSync();
  }
}

benchMain(import.meta.url, cardinalityBench);
