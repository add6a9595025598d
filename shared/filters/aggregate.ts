import { TOTAL_VALUE, type CountRow } from '../counts.js';
import type { Dimension } from '../event.js';
import { fromHashes } from '../sketch/index.js';
import { floorTo, HOUR_MS, MINUTE_MS, type Granularity } from '../time.js';
import type { Block } from './block.js';
import { admits, type Filter } from './grammar.js';

/**
 * Counts the rows of record blocks that pass a query's filters, per breakdown value and bucket: the filtered
 * answer's rows, the same whichever layer the blocks come from. Filters are decided once per dictionary value of a
 * block, then per row by index, so the per-row work is a few typed-array reads. Sums are kept per value, then per
 * bucket, so a breakdown over a million values and hundreds of buckets holds only the (value, bucket) pairs that
 * occur, and the answer reads per-bucket counts for the values it shows alone.
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

/** The page views of one (value, bucket), with the visitor hashes when the query counts visitors. */
export interface BucketSum {
  count: number;
  errors: number;
  hashes?: number[];
}

/**
 * The tally's sums per (value, bucket) as added, one entry per block that held the value (so a bucket may appear
 * more than once for a value), in parallel arrays of numbers: a million values cost no object, map or array each.
 * Values are numbered in the order first seen; `names[id]` is a value, `count[id]` and `errors[id]` its sums.
 */
export interface TallyEntries {
  readonly names: readonly string[];
  readonly count: readonly number[];
  readonly errors: readonly number[];
  /** Per entry: its value's number, bucket start, page views, errors and visitor hashes (when counted). */
  readonly value: readonly number[];
  readonly bucketMs: readonly number[];
  readonly views: readonly number[];
  readonly viewErrors: readonly number[];
  readonly hashes: readonly (number[] | undefined)[];
}

/** Some values' sums per bucket, merged from their entries in one pass: `ids` maps a value's number to its slot. */
export function bucketsOf(entries: TallyEntries, ids: ReadonlyMap<number, number>): Map<number, BucketSum>[] {
  const out = Array.from({ length: ids.size }, () => new Map<number, BucketSum>());
  for (let e = 0; e < entries.value.length; e += 1) {
    const slot = ids.get(entries.value[e]!);
    if (slot === undefined) continue;
    const buckets = out[slot]!;
    const hashes = entries.hashes[e];
    const known = buckets.get(entries.bucketMs[e]!);
    if (!known) {
      buckets.set(entries.bucketMs[e]!, {
        count: entries.views[e]!,
        errors: entries.viewErrors[e]!,
        ...(hashes ? { hashes: [...hashes] } : {}),
      });
      continue;
    }
    known.count += entries.views[e]!;
    known.errors += entries.viewErrors[e]!;
    if (hashes) for (const h of hashes) (known.hashes ??= []).push(h);
  }
  return out;
}

export class FilterTally {
  private readonly ids = new Map<string, number>();
  private readonly sums = {
    names: [] as string[],
    count: [] as number[],
    errors: [] as number[],
    value: [] as number[],
    bucketMs: [] as number[],
    views: [] as number[],
    viewErrors: [] as number[],
    hashes: [] as (number[] | undefined)[],
  };
  /** Every passing row's sums per bucket, whatever its value: added once per block and bucket. */
  private readonly totals = new Map<number, BucketSum>();
  /** Rows read and rows that passed, for the bench and the logs. */
  rowsRead = 0;
  rowsPassed = 0;

  constructor(private readonly query: TallyQuery) {}

  /**
   * Adds a block of the hour starting at `hourMs`, from row `first` on (rows before it are counted already: an
   * overlapping speed block).
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
    const breakdown = by ? block.lazyColumn(by) : undefined;
    const counts = block.counts();
    const hashes = visitors ? block.hashes() : undefined;
    const size = breakdown ? breakdown.dictionary.size : 1;
    // Minute buckets only from a block with minutes and a minute query; else the whole block is one bucket.
    const slots = minutes !== undefined && granularity === 'minute' ? 60 : 1;
    const hourBucketMs = floorTo(hourMs, granularity === 'minute' ? 'hour' : granularity);
    // Sums per (slot, breakdown index) of this block in flat arrays (a block's dictionary is its own); minute
    // slots go through a map from key to array place, so the arrays stay as long as the rows.
    const places = slots > 1 ? new Map<number, number>() : undefined;
    const keys: number[] = [];
    const width = places ? Math.min(n - first, slots * size) : size;
    const viewsAt = new Float64Array(width);
    const errorsAt = new Float64Array(width);
    const hashesAt: (number[] | undefined)[] | undefined = hashes ? new Array(width) : undefined;
    this.rowsRead += n - first;
    let passed = 0;
    for (let i = first; i < n; i += 1) {
      let pass = true;
      for (let t = 0; t < tests.length && pass; t += 1) pass = tests[t]!.pass[tests[t]!.indexes[i]!] === 1;
      if (!pass) continue;
      let slot = 0;
      if (minutes) {
        const minuteMs = hourMs + minutes[i]! * MINUTE_MS;
        if (minuteMs < fromMs || minuteMs >= toMs) continue;
        if (slots > 1) slot = minutes[i]!;
      }
      let key = slot * size + (breakdown ? breakdown.indexes[i]! : 0);
      if (places) {
        let place = places.get(key);
        if (place === undefined) {
          places.set(key, (place = keys.length));
          keys.push(key);
        }
        key = place;
      }
      const count = counts ? counts[i]! : 1;
      viewsAt[key]! += count;
      if (errorOf[status.indexes[i]!]) errorsAt[key]! += count;
      if (hashesAt && !Number.isNaN(hashes![i]!)) (hashesAt[key] ??= []).push(hashes![i]!);
      passed += 1;
    }
    this.rowsPassed += passed;
    if (passed === 0) return;
    const slotViews = new Float64Array(slots);
    const slotErrors = new Float64Array(slots);
    const slotHashes: number[][][] = Array.from({ length: slots }, () => []);
    for (let at = 0; at < viewsAt.length; at += 1) {
      const views = viewsAt[at]!;
      if (views === 0) continue;
      const key = places ? keys[at]! : at;
      const slot = Math.floor(key / size);
      const value = breakdown ? breakdown.dictionary.at(key - slot * size) : TOTAL_VALUE;
      const bucketMs = slots > 1 ? hourMs + slot * MINUTE_MS : hourBucketMs;
      this.entry(value, bucketMs, views, errorsAt[at]!);
      if (hashesAt) this.sums.hashes.push(hashesAt[at]);
      slotViews[slot]! += views;
      slotErrors[slot]! += errorsAt[at]!;
      if (hashesAt?.[at]) slotHashes[slot]!.push(hashesAt[at]!);
    }
    for (let slot = 0; slot < slots; slot += 1) {
      if (slotViews[slot] === 0) continue;
      const total = this.total(
        slots > 1 ? hourMs + slot * MINUTE_MS : hourBucketMs,
        slotViews[slot]!,
        slotErrors[slot]!,
      );
      if (hashes) for (const list of slotHashes[slot]!) for (const h of list) (total.hashes ??= []).push(h);
    }
  }

  /**
   * Adds page views counted elsewhere (the cube's heads, shared/batch/heads.ts) that pass the filters: a value's in a
   * bucket, or (`value` undefined) the bucket's total over all values. The bucket is floored to the granularity.
   */
  addSum(value: string | undefined, bucketMs: number, views: number, errors: number): void {
    const at = floorTo(bucketMs, this.query.granularity);
    if (value === undefined) this.total(at, views, errors);
    else this.entry(value, at, views, errors);
  }

  /** Adds a (value, bucket) entry and the value's sums; the caller pushes its hashes when the query counts visitors. */
  private entry(value: string, bucketMs: number, views: number, errors: number): void {
    const sums = this.sums;
    let id = this.ids.get(value);
    if (id === undefined) {
      this.ids.set(value, (id = sums.names.length));
      sums.names.push(value);
      sums.count.push(0);
      sums.errors.push(0);
    }
    sums.count[id]! += views;
    sums.errors[id]! += errors;
    sums.value.push(id);
    sums.bucketMs.push(bucketMs);
    sums.views.push(views);
    sums.viewErrors.push(errors);
  }

  /** Adds to a bucket's total over all values, and returns it. */
  private total(bucketMs: number, views: number, errors: number): BucketSum {
    let total = this.totals.get(bucketMs);
    if (!total) this.totals.set(bucketMs, (total = { count: 0, errors: 0 }));
    total.count += views;
    total.errors += errors;
    return total;
  }

  /** Every passing row's sums per bucket start, over all values. */
  buckets(): ReadonlyMap<number, BucketSum> {
    return this.totals;
  }

  /**
   * Whether some of `values` passes every filter on `dimension`: a part of a block that holds no other values of
   * it adds nothing to this tally when not, and need not be read (shared/batch/cube.ts).
   */
  admitsAny(dimension: Dimension, values: readonly string[]): boolean {
    return this.query.filters.every((f) => f.dimension !== dimension || values.some((v) => admits(f, v)));
  }

  /** The sums per breakdown value (one value, `all`, without a breakdown), and per (value, bucket). */
  entries(): TallyEntries {
    return this.sums;
  }

  /** The rows counted so far, per (bucket, value), with their visitors' sketches when asked for. */
  rows(): CountRow[] {
    const { names } = this.sums;
    const all = bucketsOf(this.sums, new Map(names.map((_, id) => [id, id])));
    return all.flatMap((buckets, id) =>
      [...buckets].map(([bucketMs, { count, errors, hashes }]) => ({
        bucketMs,
        value: names[id]!,
        count,
        errors,
        ...(this.query.visitors ? { visitors: fromHashes(hashes ?? []) } : {}),
      })),
    );
  }
}
