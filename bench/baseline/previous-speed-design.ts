import type { KinesisStreamRecord } from 'aws-lambda';
import { aggregateBatch } from '../../shared/speed/aggregate.js';
import { valueKey } from '../../shared/keys.js';
import { padSequence } from '../../shared/speed/table.js';
import { minuteKey } from '../../shared/time.js';
import type { Item } from '../support/condition-expression.js';
import { itemBytes } from '../support/in-memory-speed-table.js';
import { footprint, type WriteCost } from '../support/speed-design.js';

/**
 * The speed table's previous layout, one item per (minute, value, shard): no longer written; the speed bench
 * sizes that design beside the current one.
 */
export const speedSortKey = (minuteMs: number, value: string, shardId: string): string =>
  `${minuteKey(minuteMs)}#${valueKey(value)}#${shardId}`;

/**
 * The previous design, sized from the same aggregation: one item per (minute, dimension, value, shard) with
 * its count, high-water, minute, value and TTL, and one UpdateItem per such cell and batch.
 */
export function previousDesign(lambdaBatches: readonly KinesisStreamRecord[][], nowMs: number): WriteCost {
  const items = new Map<string, Item>();
  let writes = 0;
  let writeUnits = 0;
  for (const batch of lambdaBatches) {
    for (const cell of aggregateBatch(batch, nowMs, 48).cells.values()) {
      const counts = new Map<number, number>();
      for (const index of cell.valueIndexes) counts.set(index, (counts.get(index) ?? 0) + 1);
      for (const [index, count] of counts) {
        const value = cell.values[index]!;
        const sk = speedSortKey(cell.minuteMs, value, cell.shardId);
        const key = `${cell.pk}\n${sk}`;
        const before = items.get(key);
        const after: Item = {
          pk: cell.pk,
          sk,
          n: ((before?.n as number | undefined) ?? 0) + count,
          hw: padSequence(cell.sequences[cell.sequences.length - 1]!),
          m: cell.minuteMs,
          v: value,
          expiresAt: cell.expiresAt,
        };
        items.set(key, after);
        writes += 1;
        writeUnits += Math.ceil(Math.max(before ? itemBytes(before) : 0, itemBytes(after)) / 1024);
      }
    }
  }
  return footprint(items.values(), writes, writeUnits);
}
