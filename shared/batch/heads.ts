import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import type { Dimension } from '../event.js';
import type { Block } from '../filters/block.js';
import type { Filter } from '../filters/grammar.js';
import { HOUR_MS } from '../time.js';
import { topOf } from '../views/top.js';

/**
 * The filter cube's heads (docs/filters.md): per (site, day), for each value v of a HEAD_FILTERS dimension d (its
 * HEAD_VALUES most viewed), the HEAD_DEPTH values of each HEAD_BREAKDOWNS dimension b with the most page views among
 * the day's rows with d = v, each with its exact page views and errors per hour; the rows' totals per hour; and a
 * floor, the most page views of any b value not listed (0 when every one is). `by=url&filter=country:DE` over 30 days
 * then reads 30 parts of a few kilobytes instead of every German row, and its answer is exact when the heads prove it
 * (shared/serving/filtered.ts): each value shown is listed on every day, so its counts are known, and no other
 * value can reach the last one shown, whatever it holds below the floors.
 *
 * Heads are built from the day's cube hours when the day's manifest is written (shared/batch/cube.ts), all 24 of
 * them: hours not recomputed are read back from their objects, as the views' writer does (shared/views/writer.ts).
 * The day's heads are one S3 object of parts, each a brotli'd JSON document, and the manifest item's `heads` names
 * the object and each part's bytes, so a query fetches its parts by range.
 */

/** The dimensions a heads part is per value of: those a cube hour is sorted by. */
export const HEAD_FILTERS: readonly Dimension[] = ['country', 'browser', 'device', 'os', 'status', 'source'];
/** The breakdowns that heads list: the ones with a value per page (too many to count per query). */
export const HEAD_BREAKDOWNS: readonly Dimension[] = ['url'];
/** Values listed per part. Zipf-like traffic proves a top 10 over a month far above this depth. */
export const HEAD_DEPTH = 128;
/** Values of a HEAD_FILTERS dimension with a part per day, at most (the most viewed; the rest read the cube). */
export const HEAD_VALUES = 64;
/**
 * Longest value with a part: `source` may be a caller's utm_source, and the index lives in the day's manifest item,
 * which DynamoDB caps at 400 KB ("Constraints in Amazon DynamoDB", Items). 6 × 64 values of at most 64 characters
 * keep the index under 40 KB; a longer value reads the cube.
 */
export const HEAD_VALUE_MAX_LENGTH = 64;

/** One heads part: a (breakdown, dimension, value) of a day. */
export interface HeadPart {
  /** The rows with the value, per hour of the day (0-23) that holds any: [hour, page views, errors]. */
  readonly hours: [number, number, number][];
  /** The most page views in the day of any breakdown value not listed; 0 when all are listed. */
  readonly floor: number;
  /** Listed breakdown values: [value, hour, page views, errors, hour, page views, errors, …]. */
  readonly top: [string, ...number[]][];
}

/**
 * A day's heads index, as the manifest item's `heads`: the object's key and, as JSON, per breakdown and dimension
 * `{ values: { value: [offset, bytes] }, capped }`, `capped` when values beyond HEAD_VALUES have no part.
 */
export interface HeadsEntry {
  readonly key: string;
  readonly index: string;
}

export type HeadsIndex = Partial<
  Record<Dimension, Partial<Record<Dimension, { values: Record<string, [number, number]>; capped: boolean }>>>
>;

/** The day's hour blocks (every part of every hour with rows), decoded. */
export interface DayBlocks {
  readonly hourMs: number;
  readonly blocks: readonly Block[];
}

const compress = (json: string): Buffer =>
  brotliCompressSync(Buffer.from(json), { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } });

/** Builds a day's heads from its hours: the object's body and its index. */
export function buildHeads(dayMs: number, hours: readonly DayBlocks[]): { body: Buffer; index: HeadsIndex } {
  const bodies: Buffer[] = [];
  let offset = 0;
  const index: HeadsIndex = {};
  for (const by of HEAD_BREAKDOWNS) {
    const byIndex: NonNullable<HeadsIndex[Dimension]> = (index[by] = {});
    for (const dimension of HEAD_FILTERS) {
      if (dimension === by) continue;
      const parts = headParts(dayMs, hours, dimension, by);
      const values: Record<string, [number, number]> = {};
      for (const [value, part] of parts.parts) {
        const body = compress(JSON.stringify(part));
        values[value] = [offset, body.length];
        offset += body.length;
        bodies.push(body);
      }
      byIndex[dimension] = { values, capped: parts.capped };
    }
  }
  return { body: Buffer.concat(bodies), index };
}

/** The parts of one (dimension, breakdown) of a day, by value of the dimension. */
function headParts(
  dayMs: number,
  hours: readonly DayBlocks[],
  dimension: Dimension,
  by: Dimension,
): { parts: Map<string, HeadPart>; capped: boolean } {
  // Day-wide numbers for the dimension's values (v) and the breakdown's (b), each block's dictionaries mapped once.
  const vIds = new Map<string, number>();
  const bIds = new Map<string, number>();
  const bNames: string[] = [];
  const idsOf = (dictionary: readonly string[], ids: Map<string, number>, names?: string[]) =>
    Int32Array.from(dictionary, (value) => {
      let id = ids.get(value);
      if (id === undefined) {
        ids.set(value, (id = ids.size));
        names?.push(value);
      }
      return id;
    });
  const mapped = hours.flatMap(({ hourMs, blocks }) =>
    blocks.map((block) => {
      const d = block.column(dimension);
      const b = block.column(by);
      const status = block.column('status');
      return {
        hour: Math.floor((hourMs - dayMs) / HOUR_MS),
        block,
        d: { indexes: d.indexes, ids: idsOf(d.dictionary, vIds) },
        b: { indexes: b.indexes, ids: idsOf(b.dictionary, bIds, bNames) },
        errorOf: Uint8Array.from(status.dictionary, (v) => (Number(v) >= 400 ? 1 : 0)),
        statusIndexes: status.indexes,
        counts: block.counts(),
      };
    }),
  );
  // Pass 1: page views per (v, b) of the day, and per (v, hour).
  const perValue = Array.from({ length: vIds.size }, () => new Map<number, number>());
  const hourly = Array.from({ length: vIds.size }, () => new Float64Array(48));
  for (const m of mapped)
    for (let i = 0; i < m.block.rows; i += 1) {
      const v = m.d.ids[m.d.indexes[i]!]!;
      const b = m.b.ids[m.b.indexes[i]!]!;
      const count = m.counts ? m.counts[i]! : 1;
      const views = perValue[v]!;
      views.set(b, (views.get(b) ?? 0) + count);
      hourly[v]![2 * m.hour]! += count;
      if (m.errorOf[m.statusIndexes[i]!]) hourly[v]![2 * m.hour + 1]! += count;
    }
  const vNames = [...vIds.keys()];
  const totals = vNames.map((_, v) => {
    let sum = 0;
    for (let h = 0; h < 24; h += 1) sum += hourly[v]![2 * h]!;
    return sum;
  });
  const eligible = vNames.flatMap((name, v) => (name.length <= HEAD_VALUE_MAX_LENGTH ? [v] : []));
  const kept = topOf(eligible.length, HEAD_VALUES, (a, b) => {
    const [x, y] = [eligible[a]!, eligible[b]!];
    return totals[x]! > totals[y]! || (totals[x] === totals[y] && vNames[x]! < vNames[y]!);
  }).map((k) => eligible[k]!);
  // The listed breakdown values of each kept v, and their floor.
  const listed = new Map<number, Map<number, number[]>>();
  const floors = new Map<number, number>();
  for (const v of kept) {
    const views = perValue[v]!;
    const ids = [...views.keys()];
    const counts = ids.map((b) => views.get(b)!);
    const top = topOf(
      ids.length,
      HEAD_DEPTH,
      (x, y) => counts[x]! > counts[y]! || (counts[x] === counts[y] && bNames[ids[x]!]! < bNames[ids[y]!]!),
    );
    const inTop = new Set(top);
    let floor = 0;
    counts.forEach((count, k) => !inTop.has(k) && count > floor && (floor = count));
    floors.set(v, floor);
    listed.set(v, new Map(top.map((k) => [ids[k]!, new Array<number>(48).fill(0)])));
  }
  // Pass 2: the listed values' page views and errors per hour.
  for (const m of mapped)
    for (let i = 0; i < m.block.rows; i += 1) {
      const cells = listed.get(m.d.ids[m.d.indexes[i]!]!)?.get(m.b.ids[m.b.indexes[i]!]!);
      if (!cells) continue;
      const count = m.counts ? m.counts[i]! : 1;
      cells[2 * m.hour]! += count;
      if (m.errorOf[m.statusIndexes[i]!]) cells[2 * m.hour + 1]! += count;
    }
  const perHour = (cells: ArrayLike<number>): number[][] => {
    const out: number[][] = [];
    for (let h = 0; h < 24; h += 1) if (cells[2 * h]! > 0) out.push([h, cells[2 * h]!, cells[2 * h + 1]!]);
    return out;
  };
  const parts = new Map<string, HeadPart>();
  for (const v of kept) {
    const top = [...listed.get(v)!].map(([b, cells]): [string, ...number[]] => [
      bNames[b]!,
      ...perHour(cells).flat(),
    ]);
    parts.set(vNames[v]!, {
      hours: perHour(hourly[v]!) as [number, number, number][],
      floor: floors.get(v)!,
      top,
    });
  }
  return { parts, capped: kept.length < vNames.length };
}

/** A heads part, from its bytes. */
export const decodeHeadPart = (bytes: Uint8Array): HeadPart =>
  JSON.parse(brotliDecompressSync(bytes).toString('utf8')) as HeadPart;

/** A filtered breakdown that heads serve: `by` under `dimension` is any of `values`. */
export interface HeadsQuery {
  readonly by: Dimension;
  readonly dimension: Dimension;
  readonly values: readonly string[];
}

/**
 * Whether heads can answer a filtered breakdown: one filter, `is` (one value or any of several) on a HEAD_FILTERS
 * dimension, a HEAD_BREAKDOWNS breakdown, ranked by page views and without visitors (heads hold no visitor hashes).
 */
export function headsServe(query: {
  readonly by?: Dimension;
  readonly filters: readonly Filter[];
  readonly order: string;
  readonly metrics: readonly string[];
}): HeadsQuery | undefined {
  const { by, filters } = query;
  const filter = filters[0];
  if (!by || !HEAD_BREAKDOWNS.includes(by) || filters.length !== 1 || filter?.op !== 'is') return undefined;
  if (!HEAD_FILTERS.includes(filter.dimension) || filter.dimension === by) return undefined;
  if (query.order !== 'pageviews' || query.metrics.includes('visitors')) return undefined;
  return { by, dimension: filter.dimension, values: [...new Set(filter.values)] };
}

/**
 * What the heads of a range prove about values they do not list: `floorSum` bounds the page views of a value no part
 * lists, and `missing(value)` what a listed value may still hold on the parts that do not list it.
 */
export interface HeadsBound {
  readonly floorSum: number;
  missing(value: string): number;
}

/** The bound of some parts, each with the set of values it lists. */
export function boundOf(parts: readonly { floor: number; listed: ReadonlySet<string> }[]): HeadsBound {
  const withFloor = parts.filter((p) => p.floor > 0);
  const floorSum = withFloor.reduce((sum, p) => sum + p.floor, 0);
  return {
    floorSum,
    missing: (value) => withFloor.reduce((sum, p) => (p.listed.has(value) ? sum : sum + p.floor), 0),
  };
}
