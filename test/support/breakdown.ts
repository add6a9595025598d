import type { BatchViewReader, CountRow, HorizonState } from '../../shared/counts.js';
import type { Dimension } from '../../shared/event.js';
import type { VisitorSketch } from '../../shared/sketch/index.js';
import { sortRows } from './ground-truth.js';

/** Every hourly row of a dimension's batch views in [fromMs, H): each ranked list read whole, then looked up. */
export async function allBreakdownRows(
  reader: BatchViewReader,
  site: string,
  dimension: Dimension,
  fromMs: number,
  horizon: HorizonState,
): Promise<CountRow[]> {
  const source = await reader.breakdown(site, dimension, fromMs, horizon.horizonMs, horizon);
  const values = new Set<string>();
  for (const block of source.blocks) {
    for (const [value] of (await block.read(Number.MAX_SAFE_INTEGER)).rows) values.add(value);
  }
  return sortRows(await source.rows([...values]));
}

/** Each value's visitors over [fromMs, H), as the batch views answer them. */
export async function allBreakdownVisitors(
  reader: BatchViewReader,
  site: string,
  dimension: Dimension,
  fromMs: number,
  horizon: HorizonState,
  values: readonly string[],
): Promise<Map<string, VisitorSketch>> {
  const source = await reader.breakdown(site, dimension, fromMs, horizon.horizonMs, horizon);
  return source.visitors(values);
}
