import { spawn } from 'node:child_process';
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients, type AwsClients } from '../shared/aws-clients.js';
import { createAthenaEngine } from '../shared/batch/athena-engine.js';
import { markLanded } from '../shared/batch/catalog.js';
import { runBatch } from '../shared/batch/run.js';
import { DEFAULT_SETTINGS, PREFIXES, resourceNames, type ResourceNames } from '../shared/resources.js';
import { HOUR_MS, hourBucket, hourPartition, hourPartitionPath } from '../shared/time.js';
import { athenaAnswering, athenaCsvLines, ATHENA_CSV_HEADER } from '../local/athena-csv.js';
import { streamViewSql } from '../local/athena-duckdb.js';
import { duckdbConnection, sqlString } from '../local/duckdb.js';
import { startEmulators } from '../local/emulators.js';
import { provision } from '../local/provision.js';
import { computeHoursInMemory } from './baseline/in-memory-day.js';
import { benchMain, isEntry } from './support/cli.js';
import type { BenchFigure, BenchSection } from './support/types.js';

/**
 * A flood of distinct values: one hour in which every page view has a url of its own (2M distinct urls), as a
 * hostile or broken producer sends. The batch run for that hour runs as the batch function does on AWS: its
 * Athena engine reads the query's result CSV from S3 (written beforehand from DuckDB's rows, since there is no
 * Athena here) and writes the views to DynamoDB Local and s3rver. Each design runs in a process of its own with
 * the Lambda's heap (3,008 MB), so that its peak RSS (VmHWM) is its own: this design (results streamed, the day
 * spilled to disk) and the previous one (every result row and every row of the day in memory), measured on the
 * same data in the same run. Also measured: reading the 2M-row result alone, streamed and collected.
 */

const DEFAULT_URLS = 2_000_000;
const HEAP_MB = 3008;

type Design = 'streamed' | 'in-memory' | 'read-streamed' | 'read-collected';

interface ChildJob {
  readonly design: Design;
  readonly endpoints: { kinesis: string; dynamodb: string; s3: string };
  readonly region: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  readonly names: ResourceNames;
  readonly resultKey: string;
  readonly hourMs: number;
  readonly spillDir: string;
}

interface ChildResult {
  readonly wallMs: number;
  readonly rows: number;
  readonly peakHeapBytes: number;
  readonly objectsWritten: number;
}

/** Writes one hour of `urls` page views, each with its own url, as Parquet, and returns the file. */
async function synthesize(dir: string, hourMs: number, urls: number): Promise<string> {
  const connection = await duckdbConnection();
  const file = join(dir, 'flood.parquet');
  try {
    await connection.run('SELECT setseed(0.23)');
    await connection.run(`COPY (
      SELECT ${hourMs} + CAST(floor(i * ${HOUR_MS / urls}) AS BIGINT) AS created,
        'https://flood.example/' || md5(CAST(i AS VARCHAR)) AS url,
        200 AS status, 'US' AS country, 'CH' AS browser, userid,
        CAST(('0x' || substr(sha256(userid), 1, 13)) AS BIGINT) AS userhash,
        CAST(NULL AS VARCHAR) AS eventid, 'shardId-000000000000' AS shardid, CAST(i AS VARCHAR) AS sequencenumber
      FROM (SELECT i, CAST(CAST(floor(random() * 1000000) AS BIGINT) AS VARCHAR) AS userid FROM range(${urls}) t(i))
    ) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION snappy)`);
  } finally {
    connection.closeSync();
  }
  return file;
}

/** The hour's view rows, computed by DuckDB, as Athena's result CSV on disk; returns the file and its rows. */
async function resultCsv(
  dir: string,
  hourMs: number,
  parquet: string,
): Promise<{ file: string; rows: number }> {
  const { dt, hour } = hourPartition(hourMs);
  const partition = join(dir, 'raw', hourPartitionPath(hourMs));
  mkdirSync(partition, { recursive: true });
  renameSync(parquet, join(partition, 'flood.parquet'));
  const file = join(dir, 'result.csv');
  writeFileSync(file, ATHENA_CSV_HEADER);
  let rows = 0;
  const end = String(Number(hour) + 1).padStart(2, '0');
  for await (const chunk of streamViewSql(
    'hourly_views',
    [DEFAULT_SETTINGS.defaultSite, dt, hour, end],
    [join(partition, 'flood.parquet')],
  )) {
    appendFileSync(file, athenaCsvLines(chunk));
    rows += chunk.length;
  }
  return { file, rows };
}

/** Runs one design in a child process with the Lambda's heap; its peak RSS is read from /proc while it runs. */
function runChild(
  job: ChildJob,
  liveHeap = false,
): Promise<ChildResult & { peakRssBytes: number; completed: boolean; error?: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        `--max-old-space-size=${HEAP_MB}`,
        // The live-heap run collects garbage before each sample, so that its peak is what the run holds.
        ...(liveHeap ? ['--expose-gc'] : []),
        '--import',
        'tsx',
        'bench/flood.ts',
        '--child',
        JSON.stringify(job),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let peakRssBytes = 0;
    const sample = setInterval(() => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
        if (hwm) peakRssBytes = Math.max(peakRssBytes, Number(hwm[1]) * 1024);
      } catch {
        // Gone already.
      }
    }, 50);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      clearInterval(sample);
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) {
        resolve({ ...(JSON.parse(line) as ChildResult), peakRssBytes, completed: true });
      } else {
        resolve({
          wallMs: NaN,
          rows: 0,
          peakHeapBytes: NaN,
          objectsWritten: 0,
          peakRssBytes,
          completed: false,
          error: `exit ${code}: ${err
            .split('\n')
            .filter((line) => /Error|error:|heap/i.test(line))
            .slice(0, 3)
            .join(' | ')
            .slice(0, 400)}`,
        });
      }
    });
  });
}

/** The child: one design's run, timed, with its peak heap. */
async function child(job: ChildJob): Promise<ChildResult> {
  const clients: AwsClients = createAwsClients(job);
  let peakHeapBytes = 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  const sample = setInterval(
    () => {
      gc?.();
      const { heapUsed, external } = process.memoryUsage();
      peakHeapBytes = Math.max(peakHeapBytes, heapUsed + external);
    },
    // A full GC of a heap of gigabytes takes a second or more: sampling faster starves the run's sockets.
    gc ? 1000 : 20,
  );
  const engine = createAthenaEngine({
    athena: athenaAnswering(`s3://${job.names.bucket}/${job.resultKey}`),
    s3: clients.s3,
    workgroup: 'local',
    database: 'local',
    sleep: async () => undefined,
  });
  const store = {
    s3: clients.s3,
    bucket: job.names.bucket,
    documents: clients.documents,
    tableName: job.names.tables.batchViews,
  };
  const { dt, hour } = hourPartition(job.hourMs);
  const params = [DEFAULT_SETTINGS.defaultSite, dt, hour, String(Number(hour) + 1).padStart(2, '0')];
  const started = performance.now();
  let rows = 0;
  let objectsWritten = 0;
  if (job.design === 'streamed') {
    const summary = await runBatch({
      engine: {
        // Counts the rows as they stream past.
        async *query(name, parameters, partitions) {
          for await (const chunk of engine.query(name, parameters, partitions)) {
            rows += chunk.length;
            yield chunk;
          }
        },
      },
      documents: clients.documents,
      s3: clients.s3,
      bucket: job.names.bucket,
      viewsTable: job.names.tables.batchViews,
      stateTable: job.names.tables.batchState,
      settings: DEFAULT_SETTINGS,
      clock: () => job.hourMs + 2 * HOUR_MS,
      spillDir: job.spillDir,
    });
    if (summary.failedHours > 0 || summary.hours !== 1)
      throw new Error(`run did not compute the hour: ${summary.detail}`);
    objectsWritten = summary.objectsWritten;
  } else if (job.design === 'in-memory') {
    const result = await computeHoursInMemory(engine, store, [job.hourMs], 'bench');
    rows = result.rows;
    objectsWritten = result.objectsWritten;
  } else {
    const all = [];
    for await (const chunk of engine.query('hourly_views', params, [])) {
      rows += chunk.length;
      if (job.design === 'read-collected') for (const row of chunk) all.push(row);
    }
    if (job.design === 'read-collected' && all.length !== rows) throw new Error('lost rows');
  }
  const wallMs = performance.now() - started;
  clearInterval(sample);
  clients.destroy();
  return { wallMs, rows, peakHeapBytes, objectsWritten };
}

const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);

export const floodBench: BenchSection = async ({ quick, log, urls: only }) => {
  // `--urls N` floods with N urls instead (a shorter look).
  const URLS = only ?? DEFAULT_URLS;
  // Minutes of work at 2M rows: the full bench only (the quick one inside `npm test` skips it).
  if (quick) return [];
  const emulators = await startEmulators();
  const clients = createAwsClients(emulators);
  const dir = mkdtempSync(join(tmpdir(), 'bench-flood-'));
  const hourMs = hourBucket(Date.now()) - 3 * HOUR_MS;
  try {
    log(`flood: synthesizing one hour of ${URLS.toLocaleString('en-US')} page views, each with its own url`);
    const parquet = await synthesize(dir, hourMs, URLS);
    const { file, rows } = await resultCsv(dir, hourMs, parquet);
    log(`flood: ${rows.toLocaleString('en-US')} result rows, ${mb(statSync(file).size)} MB of CSV`);
    const resultKey = `${PREFIXES.athenaResults}flood.csv`;
    const jobs: Record<Design, ChildJob> = {} as Record<Design, ChildJob>;
    for (const design of ['streamed', 'in-memory', 'read-streamed', 'read-collected'] as const) {
      const names = resourceNames(`bench-flood-${design}`);
      await provision(clients, names, { shards: 1 });
      await clients.s3.send(
        new PutObjectCommand({ Bucket: names.bucket, Key: resultKey, Body: readFileSync(file) }),
      );
      await markLanded(
        { documents: clients.documents, tableName: names.tables.batchState },
        [`${PREFIXES.raw}${hourPartitionPath(hourMs)}/flood.parquet`],
        Date.now(),
      );
      jobs[design] = {
        design,
        endpoints: emulators.endpoints,
        region: emulators.region,
        credentials: emulators.credentials,
        names,
        resultKey,
        hourMs,
        spillDir: dir,
      };
    }
    const results = {} as Record<Design, Awaited<ReturnType<typeof runChild>>>;
    for (const design of Object.keys(jobs) as Design[]) {
      log(`flood: ${design}…`);
      results[design] = await runChild(jobs[design]);
      log(`flood: ${design}: ${JSON.stringify(results[design])}`);
    }
    // Again with garbage collected before each heap sample: the heap each design holds (its writes are
    // unchanged objects this time, so only the read, spill and build are measured).
    const live = {} as Record<'streamed' | 'in-memory', Awaited<ReturnType<typeof runChild>>>;
    for (const design of ['streamed', 'in-memory'] as const) {
      await markLanded(
        { documents: clients.documents, tableName: jobs[design].names.tables.batchState },
        [`${PREFIXES.raw}${hourPartitionPath(hourMs)}/flood.parquet`],
        Date.now(),
      );
      live[design] = await runChild(jobs[design], true);
      log(`flood: ${design}, live heap: ${JSON.stringify(live[design])}`);
    }
    const { streamed, 'in-memory': previous } = results;
    if (!streamed.completed) throw new Error(`the streamed run did not complete: ${streamed.error}`);
    const previousNote = previous.completed
      ? `previous design: ${Math.round(previous.wallMs / 1000)} s, peak heap ${mb(previous.peakHeapBytes)} MB`
      : `previous design did not complete within a ${HEAP_MB} MB heap (${previous.error})`;
    const note = `one hour, ${URLS.toLocaleString('en-US')} distinct urls, ${streamed.rows.toLocaleString('en-US')} result rows read from Athena's result CSV in S3; ${streamed.objectsWritten} view objects written; each design in its own process with a ${HEAP_MB} MB heap`;
    const figures: BenchFigure[] = [
      {
        section: 'flood',
        metric: `hour of ${URLS / 1e6}M distinct urls: batch run, peak RSS`,
        value: mb(streamed.peakRssBytes),
        unit: 'MB',
        ...(previous.completed || previous.peakRssBytes > 0
          ? { baseline: mb(previous.peakRssBytes), ratio: previous.peakRssBytes / streamed.peakRssBytes }
          : {}),
        note: `${note}; baseline: ${previousNote} (peak RSS ${previous.completed ? '' : 'until it failed: '}${mb(previous.peakRssBytes)} MB); ratio = previous / ours`,
      },
      {
        section: 'flood',
        metric: `hour of ${URLS / 1e6}M distinct urls: batch run, peak live heap`,
        value: mb(live.streamed.peakHeapBytes),
        unit: 'MB',
        ...(live['in-memory'].completed
          ? {
              baseline: mb(live['in-memory'].peakHeapBytes),
              ratio: live['in-memory'].peakHeapBytes / live.streamed.peakHeapBytes,
            }
          : {}),
        note: `heap used + external after a full GC, every second, in a second run of each design (the day already stored); process baseline (SDK, code) included; ratio = previous / ours`,
      },
      {
        section: 'flood',
        metric: `hour of ${URLS / 1e6}M distinct urls: batch run, wall time`,
        value: Math.round(streamed.wallMs / 100) / 10,
        unit: 's',
        ...(previous.completed
          ? { baseline: Math.round(previous.wallMs / 100) / 10, ratio: previous.wallMs / streamed.wallMs }
          : {}),
        note: `${Math.round(streamed.rows / (streamed.wallMs / 1000)).toLocaleString('en-US')} result rows/s through the whole run (query result read, views built and written to the emulators); ratio = previous / ours`,
      },
    ];
    const read = results['read-streamed'];
    const collected = results['read-collected'];
    if (read.completed)
      figures.push({
        section: 'flood',
        metric: `Athena result of ${(read.rows / 1e6).toFixed(1)}M rows read from its CSV in S3: rows/s`,
        value: Math.round(read.rows / (read.wallMs / 1000)),
        unit: 'rows/s',
        note: `streamed in 1,000-row chunks, peak RSS ${mb(read.peakRssBytes)} MB; collected into one array: ${collected.completed ? `peak RSS ${mb(collected.peakRssBytes)} MB, ${Math.round(collected.rows / (collected.wallMs / 1000)).toLocaleString('en-US')} rows/s` : `did not complete (${collected.error})`}; GetQueryResults would take ${Math.ceil(read.rows / 1000).toLocaleString('en-US')} sequential calls`,
      });
    return figures;
  } finally {
    for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    clients.destroy();
    await emulators.stop();
  }
};

if (isEntry(import.meta.url) && process.argv[2] === '--child') {
  const job = JSON.parse(process.argv[3]!) as ChildJob;
  child(job)
    .then((result) => {
      process.stdout.write(JSON.stringify(result) + '\n');
      process.exit(0);
    })
    .catch((error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    });
} else {
  benchMain(import.meta.url, floodBench);
}
