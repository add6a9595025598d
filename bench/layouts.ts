import type { KinesisStreamRecord } from 'aws-lambda';
import { aggregateBatch } from '../shared/speed/aggregate.js';
import {
  DEFAULT_CELL_WRITE_LIMITS,
  emptyTally,
  GenerationCache,
  startProgress,
  writeCell,
  type CellWriteLimits,
} from '../shared/speed/cell-writer.js';
import { VALUE_BUCKETS } from '../shared/speed/table.js';
import { runCli } from '../tools/cli.js';
import { previousDesign } from './baseline/previous-speed-design.js';
import { InMemorySpeedTable } from './support/in-memory-speed-table.js';
import { LAMBDA_BATCHES, shardTraffic } from './support/shard-traffic.js';
import { chunks } from './support/stats.js';
import { footprint, type WriteCost } from './support/speed-design.js';

/** A layout to compare: url value buckets and the generation size limit. */
interface Layout {
  readonly urlBuckets: number;
  readonly itemSizeLimitBytes: number;
}

const LAYOUTS: readonly Layout[] = [
  { urlBuckets: 1, itemSizeLimitBytes: 4096 },
  { urlBuckets: 1, itemSizeLimitBytes: 8192 },
  { urlBuckets: VALUE_BUCKETS.url, itemSizeLimitBytes: DEFAULT_CELL_WRITE_LIMITS.itemSizeLimitBytes },
  { urlBuckets: 8, itemSizeLimitBytes: 8192 },
  { urlBuckets: 4, itemSizeLimitBytes: 16384 },
];

/** Writes, write units and stored url bytes of one layout, through the real aggregation and cell writer. */
async function layoutCost(
  lambdaBatches: readonly KinesisStreamRecord[][],
  layout: Layout,
): Promise<WriteCost> {
  const table = new InMemorySpeedTable();
  const writer = {
    documents: table.client,
    tableName: 'bench',
    limits: {
      ...DEFAULT_CELL_WRITE_LIMITS,
      itemSizeLimitBytes: layout.itemSizeLimitBytes,
    } as CellWriteLimits,
    cache: new GenerationCache(),
  };
  const tally = emptyTally();
  const now = Date.now();
  for (const batch of lambdaBatches) {
    const { cells } = aggregateBatch(batch, now, 48, {
      buckets: { ...VALUE_BUCKETS, url: layout.urlBuckets },
    });
    for (const cell of cells.values()) await writeCell(writer, cell, startProgress(), tally);
  }
  return footprint(table.items.values(), table.writes, table.writeUnits);
}

/**
 * `npx tsx bench/layouts.ts`: the trade-off behind the layout's constants, over one minute of one
 * shard (60,000 records): requests and write units per record against the url bytes a reader of that minute reads.
 */
async function compareLayouts(): Promise<void> {
  const records = 60_000;
  const rows: string[] = [
    '| urls/day | batch | layout | writes/record | WCU/record | url bytes per 1,000 records |',
    '| ---: | ---: | --- | ---: | ---: | ---: |',
  ];
  for (const urls of [100, 300, 1000, 3000, 10_000, 100_000, 1_000_000]) {
    const traffic = shardTraffic(records, urls);
    for (const size of LAMBDA_BATCHES) {
      const lambdaBatches = chunks(traffic, size);
      const previous = previousDesign(lambdaBatches, Date.now());
      const row = (layout: string, cost: WriteCost) =>
        rows.push(
          `| ${urls.toLocaleString('en-US')} | ${size} | ${layout} | ${(cost.writes / records).toFixed(3)} | ${(cost.writeUnits / records).toFixed(3)} | ${Math.round((cost.urlBytes / records) * 1000).toLocaleString('en-US')} |`,
        );
      row('previous (one item per value)', previous);
      for (const layout of LAYOUTS) {
        const chosen =
          layout.urlBuckets === VALUE_BUCKETS.url &&
          layout.itemSizeLimitBytes === DEFAULT_CELL_WRITE_LIMITS.itemSizeLimitBytes;
        const name = `${layout.urlBuckets} bucket${layout.urlBuckets > 1 ? 's' : ''}, ${layout.itemSizeLimitBytes / 1024} KB`;
        row(chosen ? `**${name}** (this design)` : name, await layoutCost(lambdaBatches, layout));
      }
      process.stderr.write(`layouts: ${urls} urls/day, ${size}-record batches done\n`);
    }
  }
  process.stdout.write(rows.join('\n') + '\n');
}

runCli(compareLayouts);
