import { TOTAL_VALUE, type CountRow } from '../counts.js';
import type { Dimension } from '../event.js';
import { fromHashes } from '../sketch/index.js';
import { floorTo, HOUR_MS, MINUTE_MS, type Granularity } from '../time.js';
import type { Block } from './block.js';
import { admits, type Filter } from './grammar.js';

/**
 * Counts the rows of record blocks that pass a query's filters, per bucket and breakdown value: the filtered
 * answer's rows, the same whichever layer the blocks come from. Filters are decided once per dictionary value of a
 * block, then per row by index, so the per-row work is a few typed-array reads.
 */

export interface TallyQuery {
  readonly filters: readonly Filter[];
  /** The breakdown dimension; rows are then per value of it, else per bucket (value `all`). */
  readonly by?: Dimension;
  readonly granularity: Granularity;
  /** Rows outside [fromMs, toMs) are left out (speed blocks hold minutes; a batch block's hour is whole). */
  readonly fromMs: number;
  readonly toMs: number;
  readonly visitors: boolean;
}

interface Sum {
  readonly bucketMs: number;
  readonly value: string;
  count: number;
  errors: number;
  hashes?: number[];
}

export class FilterTally {
  private readonly sums = new Map<string, Sum>();
  /** Rows read and rows that passed, for the bench and the logs. */
  rowsRead = 0;
  rowsPassed = 0;

  constructor(private readonly query: TallyQuery) {}

  /**
   * Adds a block of the hour starting at `hourMs`, from row `first` on (rows before it are counted already: an
   * overlapping speed block), or only the rows `take` says (by index) when given.
   */
  add(block: Block, hourMs: number, first = 0): void {
    const { filters, by, granularity, fromMs, toMs, visitors } = this.query;
    const n = block.rows;
    if (first >= n) return;
    const minutes = block.minutes();
    if (!minutes && (hourMs < fromMs || hourMs + HOUR_MS > toMs)) return;
    const tests = filters.map((filter) => {
      const column = block.column(filter.dimension);
      return {
        indexes: column.indexes,
        pass: Uint8Array.from(column.dictionary, (v) => (admits(filter, v) ? 1 : 0)),
      };
    });
    // A filter no value of the block passes rules the block out without a row read.
    if (tests.some((t) => !t.pass.includes(1))) return;
    const status = block.column('status');
    const errorOf = Uint8Array.from(status.dictionary, (v) => (Number(v) >= 400 ? 1 : 0));
    const breakdown = by ? block.column(by) : undefined;
    const counts = block.counts();
    const hashes = visitors ? block.hashes() : undefined;
    const size = breakdown ? breakdown.dictionary.length : 1;
    const perMinute = minutes !== undefined && granularity === 'minute';
    const local = new Map<number, Sum>();
    const hourBucketMs = floorTo(hourMs, granularity === 'minute' ? 'hour' : granularity);
    this.rowsRead += n - first;
    for (let i = first; i < n; i += 1) {
      let pass = true;
      for (let t = 0; t < tests.length && pass; t += 1) pass = tests[t]!.pass[tests[t]!.indexes[i]!] === 1;
      if (!pass) continue;
      let slot = 0;
      if (minutes) {
        const minuteMs = hourMs + minutes[i]! * MINUTE_MS;
        if (minuteMs < fromMs || minuteMs >= toMs) continue;
        if (perMinute) slot = minutes[i]!;
      }
      const index = breakdown ? breakdown.indexes[i]! : 0;
      const key = slot * size + index;
      let sum = local.get(key);
      if (!sum) {
        sum = {
          bucketMs: perMinute ? hourMs + slot * MINUTE_MS : hourBucketMs,
          value: breakdown ? breakdown.dictionary[index]! : TOTAL_VALUE,
          count: 0,
          errors: 0,
        };
        local.set(key, sum);
      }
      const count = counts ? counts[i]! : 1;
      sum.count += count;
      if (errorOf[status.indexes[i]!]) sum.errors += count;
      if (hashes && !Number.isNaN(hashes[i]!)) (sum.hashes ??= []).push(hashes[i]!);
      this.rowsPassed += 1;
    }
    for (const sum of local.values()) {
      const key = `${sum.bucketMs}\n${sum.value}`;
      const known = this.sums.get(key);
      if (!known) {
        this.sums.set(key, sum);
        continue;
      }
      known.count += sum.count;
      known.errors += sum.errors;
      if (sum.hashes) {
        const into = (known.hashes ??= []);
        for (const h of sum.hashes) into.push(h);
      }
    }
  }

  /** The rows counted so far, with their visitors' sketches when asked for. */
  rows(): CountRow[] {
    return [...this.sums.values()].map(({ hashes, ...row }) =>
      this.query.visitors ? { ...row, visitors: fromHashes(hashes ?? []) } : row,
    );
  }
}
