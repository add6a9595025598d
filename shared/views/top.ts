/**
 * Exact top-N over a range without reading every value: Fagin's "no random access" bounds over ranked lists,
 * with exact totals looked up for the few values that can still make the cut.
 *
 * Each block of the range (a day of a dimension) offers its values ranked by count, read in growing
 * prefixes. A value's count in a block is at most its listed count if it appears in the prefix read so far,
 * else at most the block's floor (the smallest count read); for a block that covers only part of its day the
 * listed (whole-day) counts are still upper bounds. Summing gives an upper bound per value, and the sum of
 * floors bounds every value not read yet. Values are then resolved to exact totals in order of their upper
 * bounds until the N-th best exact total beats, strictly, every bound still open: then no other value can
 * reach or tie it, whatever the unread rows hold. Zipf-like traffic settles within the first prefix; a flat
 * distribution reads deeper, and at worst every row (the answer is exact either way).
 */

import type { RankedBlock } from '../counts.js';

export interface TopInput {
  readonly blocks: readonly RankedBlock[];
  /** Exact counts known up front for part of the range (the speed layer's minutes), by value. */
  readonly known: ReadonlyMap<string, number>;
  /** Exact totals over the whole range (known part included) for the given values. */
  readonly resolve: (values: readonly string[]) => Promise<ReadonlyMap<string, number>>;
  readonly n: number;
  /** First prefix depth; doubled fourfold while bounds stay open. @default max(4n, 256) */
  readonly depth?: number;
}

export interface TopResult {
  /** At most n values with their exact totals, by total descending then value ascending; zero totals left out. */
  readonly top: { readonly value: string; readonly total: number }[];
  /** How the answer was reached, for benchmarks and tests. */
  readonly stats: { readonly rounds: number; readonly depth: number; readonly resolved: number };
}

const byTotalThenValue = (a: { value: string; total: number }, b: { value: string; total: number }) =>
  b.total - a.total || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0);

export async function exactTop(input: TopInput): Promise<TopResult> {
  const { blocks, known, resolve, n } = input;
  const exact = new Map<string, number>();
  let depth = input.depth ?? Math.max(4 * n, 256);
  for (let round = 1; ; round += 1) {
    const prefixes = await Promise.all(blocks.map((block) => block.read(depth)));
    const floors = prefixes.map((p) => (p.complete ? 0 : (p.rows[p.rows.length - 1]?.[1] ?? 0)));
    const unseenBound = floors.reduce((a, b) => a + b, 0);
    const floorSum = unseenBound;
    // upper(v) = known(v) + Σ over blocks of (listed count if listed, else floor).
    const listed = new Map<string, number>();
    const listedFloors = new Map<string, number>();
    prefixes.forEach((prefix, b) => {
      for (const [value, count] of prefix.rows) {
        listed.set(value, (listed.get(value) ?? 0) + count);
        listedFloors.set(value, (listedFloors.get(value) ?? 0) + floors[b]!);
      }
    });
    const upper = new Map<string, number>();
    for (const [value, count] of listed)
      upper.set(value, (known.get(value) ?? 0) + count + floorSum - listedFloors.get(value)!);
    for (const [value, count] of known) if (!upper.has(value)) upper.set(value, count + floorSum);
    const open = [...upper.entries()]
      .filter(([value]) => !exact.has(value))
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));

    // Resolve values in order of their bounds until the N-th exact total beats every open bound.
    let next = 0;
    for (;;) {
      const best = [...exact.entries()]
        .filter(([, total]) => total > 0)
        .map(([value, total]) => ({ value, total }))
        .sort(byTotalThenValue);
      const nth = best.length >= n ? best[n - 1]!.total : 0;
      const openBound = next < open.length ? open[next]![1] : -1;
      if (best.length >= n && openBound < nth && unseenBound < nth) {
        return { top: best.slice(0, n), stats: { rounds: round, depth, resolved: exact.size } };
      }
      if (openBound >= Math.max(nth, 1) || (best.length < n && next < open.length)) {
        const group = open.slice(next, next + Math.max(n, 16)).map(([value]) => value);
        next += group.length;
        const totals = await resolve(group);
        for (const value of group) exact.set(value, totals.get(value) ?? 0);
        continue;
      }
      // What is open lies in rows not read yet.
      if (prefixes.every((p) => p.complete)) {
        return { top: best.slice(0, n), stats: { rounds: round, depth, resolved: exact.size } };
      }
      break;
    }
    depth *= 4;
  }
}

/** Whether value `a` ranks before `b`: more page views (or visitors), ties by value. */
export type Before = (a: number, b: number) => boolean;

/**
 * The `n` first of values `0…size-1` in rank order, through a heap of `n`: a value below the heap's last is let go
 * after one comparison, so a million values cost no sort (nor a million string comparisons among their ties).
 */
export function topOf(size: number, n: number, before: Before): number[] {
  const heap: number[] = []; // heap[0] ranks last among those kept
  const down = (at: number) => {
    for (;;) {
      const l = 2 * at + 1;
      const r = l + 1;
      let last = at;
      if (l < heap.length && before(heap[last]!, heap[l]!)) last = l;
      if (r < heap.length && before(heap[last]!, heap[r]!)) last = r;
      if (last === at) return;
      [heap[at], heap[last]] = [heap[last]!, heap[at]!];
      at = last;
    }
  };
  for (let entry = 0; entry < size; entry += 1) {
    if (heap.length < n) {
      heap.push(entry);
      for (let at = heap.length - 1; at > 0;) {
        const parent = (at - 1) >> 1;
        if (!before(heap[parent]!, heap[at]!)) break;
        [heap[at], heap[parent]] = [heap[parent]!, heap[at]!];
        at = parent;
      }
    } else if (n > 0 && before(entry, heap[0]!)) {
      heap[0] = entry;
      down(0);
    }
  }
  return heap.sort((a, b) => (before(a, b) ? -1 : 1));
}
