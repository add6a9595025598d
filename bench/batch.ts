import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hourRuns } from '../shared/batch/run.js';
import { DEFAULT_SETTINGS } from '../shared/resources.js';
import type { PageView } from '../shared/event.js';
import { PageViewGenerator } from '../traffic/generator.js';
import { DAY_MS, HOUR_MS, hourPartitionPath } from '../shared/time.js';
import { runViewSql } from '../local/athena-duckdb.js';
import { asRecords, writeParquetFile } from '../local/parquet.js';
import { benchMain } from './support/cli.js';
import type { BenchFigure, BenchSection } from './support/types.js';

/**
 * Batch layer: DuckDB time to build the hourly and daily views of a whole generated dataset (1M and 10M events
 * over two days; the quick run, which `npm test` runs, only 1M: generating 10M events takes minutes), and the Parquet bytes an hourly run reads (the hours that received objects) against a
 * full-table scan of the same dataset.
 */

const HOURS = 48;

interface Dataset {
  readonly dir: string;
  readonly files: Map<string, string>;
  readonly bytes: Map<string, number>;
  readonly startMs: number;
}

async function writeDataset(events: number, log: (line: string) => void): Promise<Dataset> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-batch-'));
  const startMs = Math.floor(Date.now() / DAY_MS) * DAY_MS - DAY_MS;
  const generator = new PageViewGenerator({ seed: 5, startMs, rate: events / (HOURS * 3600) });
  const files = new Map<string, string>();
  const bytes = new Map<string, number>();
  let buffer: PageView[] = [];
  let partition = '';
  const flush = async () => {
    if (buffer.length === 0) return;
    const path = join(dir, 'raw', partition, 'part-0.parquet');
    mkdirSync(join(dir, 'raw', partition), { recursive: true });
    await writeParquetFile(asRecords(buffer, path), path);
    files.set(partition, path);
    bytes.set(partition, statSync(path).size);
    buffer = [];
  };
  // Events come in time order, so each hour's partition is written once.
  for (let i = 0; i < events; i += 1) {
    const event = generator.next().event!;
    const p = hourPartitionPath(event.created);
    if (p !== partition) {
      await flush();
      partition = p;
    }
    buffer.push(event);
  }
  await flush();
  log(`batch: wrote ${events.toLocaleString('en-US')} events as ${files.size} hourly Parquet files`);
  return { dir, files, bytes, startMs };
}

/** Builds every hour's views of the dataset the way a catch-up batch run does: one hourly query per day. */
async function buildViews(dataset: Dataset): Promise<number> {
  const hours = Array.from({ length: HOURS }, (_, i) => dataset.startMs + i * HOUR_MS);
  let rows = 0;
  for (const run of hourRuns(hours)) {
    const files = run.hours
      .map((h) => dataset.files.get(hourPartitionPath(h)))
      .filter((f): f is string => Boolean(f));
    rows += (
      await runViewSql(
        'hourly_views',
        [DEFAULT_SETTINGS.defaultSite, run.dt, run.fromHour, run.toHour],
        files,
      )
    ).length;
  }
  return rows;
}

export const batchBench: BenchSection = async ({ quick, log }) => {
  const figures: BenchFigure[] = [];
  let scanned: BenchFigure | undefined;
  for (const events of quick ? [1_000_000] : [1_000_000, 10_000_000]) {
    const dataset = await writeDataset(events, log);
    try {
      await buildViews(dataset); // warm-up: file metadata and DuckDB caches, as on a warm batch Lambda
      const runs = quick ? 1 : 3;
      let best = Infinity;
      for (let i = 0; i < runs; i += 1) {
        const started = performance.now();
        await buildViews(dataset);
        best = Math.min(best, performance.now() - started);
      }
      figures.push({
        section: 'batch',
        metric: `DuckDB: hourly views of ${events / 1e6}M events (${HOURS} h)`,
        value: Math.round(best),
        unit: 'ms',
        note: `best of ${runs}; ${Math.round(events / (best / 1000)).toLocaleString('en-US')} events/s`,
      });
      if (!scanned) {
        // A run reads the partitions that received objects since the last run: the hour it adds.
        const partitions = [...dataset.bytes.keys()].sort();
        const runBytes = dataset.bytes.get(partitions[partitions.length - 1]!)!;
        const fullBytes = partitions.reduce((sum, p) => sum + dataset.bytes.get(p)!, 0);
        scanned = {
          section: 'batch',
          metric: `Parquet bytes read per hourly run (the hour that landed) of ${events / 1e6}M events over ${HOURS} h`,
          value: runBytes,
          unit: 'bytes',
          baseline: fullBytes,
          ratio: fullBytes / runBytes,
          note: 'baseline: full-table scan; ratio = full / hourly run (grows with history kept); a late object adds its own hour',
        };
      }
    } finally {
      rmSync(dataset.dir, { recursive: true, force: true });
    }
  }
  return [...figures, scanned!];
};

benchMain(import.meta.url, batchBench);
