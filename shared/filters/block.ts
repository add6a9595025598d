import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import { DIMENSIONS, type Dimension } from '../event.js';

/**
 * A record block: page views of one event hour with every dimension, stored column by column, so that a filtered
 * question reads only the columns it names (docs/filters.md). Both layers write it: the speed layer one block per
 * (batch, shard, event hour) as a DynamoDB item beside its counters (shared/speed/rollup.ts), the batch layer one
 * per (site, hour) as an S3 object (shared/batch/cube.ts).
 *
 * Layout (before brotli): a header of varints (format, row count, flags, each section's length), then sections:
 * - sequence numbers (speed blocks): the first in decimal, then ascending differences as LEB128 varints;
 * - minute of the hour per row, one byte (speed blocks);
 * - count per row as a varint (batch blocks, whose rows are grouped; a speed row is one page view);
 * - per dimension in DIMENSIONS order: a dictionary (values in order of first use) and one index per row, one
 *   byte when the dictionary has at most 256 values, else two, else three;
 * - the visitor hash per row in 7 bytes (52 bits; 2^52 marks a row without one).
 * Errors are not stored: a row's errors are its count when its status is 400 or above.
 */

const FORMAT = 1;
const FLAG_SEQUENCES = 1;
const FLAG_MINUTES = 2;
const FLAG_COUNTS = 4;
/** The hash a row without a visitor hash carries: above every 52-bit hash. */
const NO_HASH = 2 ** 52;

export interface BlockRow {
  /** The row's value of each dimension, in DIMENSIONS order (shared/event.ts dimensionValue). */
  readonly values: readonly string[];
  /** The visitor hash (shared/sketch userHash), or undefined for a row without one. */
  readonly hash: number | undefined;
  /** Page views the row stands for. @default 1 */
  readonly count?: number;
  /** Minute of the hour, 0–59 (speed blocks). */
  readonly minute?: number;
  /** Kinesis sequence number, decimal (speed blocks), ascending within a block. */
  readonly sequence?: string;
}

class Writer {
  private buffer = new Uint8Array(1024);
  length = 0;
  private room(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + bytes) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
  }
  byte(value: number): void {
    this.room(1);
    this.buffer[this.length++] = value;
  }
  varint(value: number): void {
    this.room(8);
    let v = value;
    while (v >= 0x80) {
      this.buffer[this.length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buffer[this.length++] = v;
  }
  bigVarint(value: bigint): void {
    let v = value;
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v) b |= 0x80;
      this.byte(b);
    } while (v);
  }
  bytes(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
  }
  string(text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    this.varint(bytes.length);
    this.bytes(bytes);
  }
  done(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}

class Reader {
  at = 0;
  constructor(private readonly buffer: Uint8Array) {}
  byte(): number {
    if (this.at >= this.buffer.length) throw new BlockFormatError('block ends early');
    return this.buffer[this.at++]!;
  }
  varint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if (!(b & 0x80)) return value;
      scale *= 0x80;
    }
  }
  bigVarint(): bigint {
    let value = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.byte();
      value |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return value;
      shift += 7n;
    }
  }
  string(): string {
    const length = this.varint();
    const text = Buffer.from(this.buffer.buffer, this.buffer.byteOffset + this.at, length).toString('utf8');
    this.at += length;
    return text;
  }
}

export class BlockFormatError extends Error {
  override readonly name = 'BlockFormatError';
}

const indexWidth = (dictionarySize: number): number =>
  dictionarySize <= 0x100 ? 1 : dictionarySize <= 0x10000 ? 2 : 3;

/**
 * Builds a block row by row without holding the rows: per dimension a dictionary and the indexes, so a batch hour of
 * 100,000 page views takes a few MB. Speed blocks add sequences and minutes, batch blocks counts.
 */
export class BlockBuilder {
  rows = 0;
  private readonly dictionaries = DIMENSIONS.map(() => new Map<string, number>());
  private readonly indexes = DIMENSIONS.map(() => new Writer());
  private readonly hashes = new Writer();
  private readonly countsOut = new Writer();
  private readonly minutesOut = new Writer();
  private readonly sequencesOut = new Writer();
  private anyCount = false;
  private previous: bigint | undefined;

  add(row: BlockRow): void {
    const first = this.rows === 0;
    if (!first && (row.sequence !== undefined) !== (this.previous !== undefined))
      throw new BlockFormatError('every row of a block has a sequence number, or none');
    for (let d = 0; d < DIMENSIONS.length; d += 1) {
      const dictionary = this.dictionaries[d]!;
      const value = row.values[d]!;
      let index = dictionary.get(value);
      if (index === undefined) dictionary.set(value, (index = dictionary.size));
      // Three bytes per index while building; encode() narrows them to what the dictionary needs.
      const w = this.indexes[d]!;
      w.byte(index & 0xff);
      w.byte((index >> 8) & 0xff);
      w.byte(index >> 16);
    }
    let h = row.hash ?? NO_HASH;
    for (let k = 0; k < 7; k += 1) {
      this.hashes.byte(h % 256);
      h = Math.floor(h / 256);
    }
    const count = row.count ?? 1;
    if (count !== 1) this.anyCount = true;
    this.countsOut.varint(count);
    if (row.minute !== undefined) this.minutesOut.byte(row.minute);
    if (row.sequence !== undefined) {
      const sequence = BigInt(row.sequence);
      if (first) this.sequencesOut.string(row.sequence);
      else if (sequence <= this.previous!)
        throw new BlockFormatError('a block holds ascending sequence numbers');
      else this.sequencesOut.bigVarint(sequence - this.previous!);
      this.previous = sequence;
    }
    this.rows += 1;
  }

  /**
   * The builder's rows regrouped into parts, each a builder of its own (with its own dictionaries): rows sorted by
   * the values of `sortBy` in order (ties as added), cut where the first or second of them changes once a part
   * holds `minRows`, and wherever a part reaches `maxRows`. A filter on the first dimension then reads only the parts
   * of its values, and one on both a share of those (shared/batch/cube.ts). For blocks without sequence numbers or minutes (the batch layer's).
   */
  split(sortBy: readonly Dimension[], minRows: number, maxRows: number): BlockBuilder[] {
    if (this.previous !== undefined || this.minutesOut.length > 0)
      throw new BlockFormatError('only blocks without sequence numbers or minutes are split');
    const n = this.rows;
    const valuesOf = this.dictionaries.map((dictionary) => [...dictionary.keys()]);
    const built = this.indexes.map((w) => w.done());
    const indexOf = (d: number, row: number): number => {
      const b = built[d]!;
      return b[3 * row]! | (b[3 * row + 1]! << 8) | (b[3 * row + 2]! << 16);
    };
    const sortColumns = sortBy.map((dimension) => {
      const d = DIMENSIONS.indexOf(dimension);
      // Each dictionary value's rank in string order, then each row's rank.
      const values = valuesOf[d]!;
      const order = values
        .map((_, i) => i)
        .sort((a, b) => (values[a]! < values[b]! ? -1 : values[a]! > values[b]! ? 1 : 0));
      const rankOf = new Uint32Array(values.length);
      order.forEach((index, rank) => (rankOf[index] = rank));
      const ranks = new Uint32Array(n);
      for (let row = 0; row < n; row += 1) ranks[row] = rankOf[indexOf(d, row)]!;
      return ranks;
    });
    const rows = Array.from({ length: n }, (_, i) => i).sort((a, b) => {
      for (const ranks of sortColumns) if (ranks[a] !== ranks[b]) return ranks[a]! - ranks[b]!;
      return a - b;
    });
    const counts = new Reader(this.countsOut.done());
    const countOf = new Uint32Array(n);
    for (let row = 0; row < n; row += 1) countOf[row] = counts.varint();
    const hashes = this.hashes.done();
    const hashOf = (row: number): number | undefined => {
      let h = 0;
      for (let k = 6; k >= 0; k -= 1) h = h * 256 + hashes[row * 7 + k]!;
      return h === NO_HASH ? undefined : h;
    };
    const parts: BlockBuilder[] = [];
    let part = new BlockBuilder();
    const cutBy = sortColumns.slice(0, 2);
    for (let at = 0; at < n; at += 1) {
      const row = rows[at]!;
      const changes = at > 0 && cutBy.some((ranks) => ranks[row] !== ranks[rows[at - 1]!]);
      if (part.rows >= maxRows || (changes && part.rows >= minRows)) {
        parts.push(part);
        part = new BlockBuilder();
      }
      part.add({
        values: DIMENSIONS.map((_, d) => valuesOf[d]![indexOf(d, row)]!),
        hash: hashOf(row),
        count: countOf[row]!,
      });
    }
    if (part.rows > 0) parts.push(part);
    return parts;
  }

  /** The distinct values of a dimension in the rows added so far, in order of first use. */
  valuesOf(dimension: Dimension): string[] {
    return [...this.dictionaries[DIMENSIONS.indexOf(dimension)]!.keys()];
  }

  /** The block, uncompressed. */
  encode(): Uint8Array {
    const n = this.rows;
    const sequences = this.previous !== undefined;
    const minutes = this.minutesOut.length === n && n > 0;
    const sections: Uint8Array[] = [];
    if (sequences) sections.push(this.sequencesOut.done());
    if (minutes) sections.push(this.minutesOut.done());
    if (this.anyCount) sections.push(this.countsOut.done());
    for (let d = 0; d < DIMENSIONS.length; d += 1) {
      const dictionary = this.dictionaries[d]!;
      const built = this.indexes[d]!.done();
      const w = new Writer();
      w.varint(dictionary.size);
      for (const value of dictionary.keys()) w.string(value);
      const width = indexWidth(dictionary.size);
      for (let i = 0; i < n; i += 1) for (let k = 0; k < width; k += 1) w.byte(built[3 * i + k]!);
      sections.push(w.done());
    }
    sections.push(this.hashes.done());
    const head = new Writer();
    head.varint(FORMAT);
    head.varint(n);
    head.varint(
      (sequences ? FLAG_SEQUENCES : 0) | (minutes ? FLAG_MINUTES : 0) | (this.anyCount ? FLAG_COUNTS : 0),
    );
    for (const section of sections) head.varint(section.length);
    return Buffer.concat([head.done(), ...sections]);
  }
}

/** Encodes rows as a block (uncompressed). */
export function encodeRows(rows: Iterable<BlockRow>): Uint8Array {
  const builder = new BlockBuilder();
  for (const row of rows) builder.add(row);
  return builder.encode();
}

/** A dimension's column: its dictionary and each row's index into it. */
export interface DimensionColumn {
  readonly dictionary: readonly string[];
  readonly indexes: Uint8Array | Uint16Array | Uint32Array;
}

/** A dictionary whose strings are made when asked for: a breakdown names only the values a query counts. */
export interface LazyDictionary {
  readonly size: number;
  at(index: number): string;
}

/**
 * A dictionary's `size` values from `r` on. When its bytes are all ASCII (urls, codes: the common case), they are
 * read as one string and cut, which is several times faster than a decode per value.
 */
function lazyDictionary(r: Reader, section: Uint8Array, size: number): LazyDictionary {
  const start = r.at;
  const offsets = new Uint32Array(size);
  const lengths = new Uint32Array(size);
  for (let i = 0; i < size; i += 1) {
    lengths[i] = r.varint();
    offsets[i] = r.at;
    r.at += lengths[i]!;
  }
  if (r.at > section.length) throw new BlockFormatError('block ends early');
  const end = r.at;
  let ascii = true;
  for (let k = start; k < end && ascii; k += 1) ascii = section[k]! < 0x80;
  const bytes = Buffer.from(section.buffer, section.byteOffset, section.length);
  if (!ascii) return { size, at: (i) => bytes.toString('utf8', offsets[i]!, offsets[i]! + lengths[i]!) };
  let text: string | undefined;
  return {
    size,
    at: (i) => {
      text ??= bytes.toString('latin1', start, end);
      return text.substring(offsets[i]! - start, offsets[i]! - start + lengths[i]!);
    },
  };
}

/** A decoded block whose columns are decoded on first use. */
export class Block {
  readonly rows: number;
  private readonly sections = new Map<string, Uint8Array>();
  private readonly columns = new Map<Dimension, DimensionColumn>();
  private readonly lazyColumns = new Map<Dimension, ReturnType<Block['lazyColumn']>>();
  private decodedCounts?: Uint32Array | null;
  private decodedHashes?: Float64Array;

  constructor(raw: Uint8Array) {
    const r = new Reader(raw);
    if (r.varint() !== FORMAT) throw new BlockFormatError('unknown block format');
    this.rows = r.varint();
    const flags = r.varint();
    const names = [
      ...(flags & FLAG_SEQUENCES ? ['sequences'] : []),
      ...(flags & FLAG_MINUTES ? ['minutes'] : []),
      ...(flags & FLAG_COUNTS ? ['counts'] : []),
      ...DIMENSIONS,
      'hashes',
    ];
    const lengths = names.map(() => r.varint());
    let at = r.at;
    names.forEach((name, i) => {
      this.sections.set(name, raw.subarray(at, at + lengths[i]!));
      at += lengths[i]!;
    });
    if (at !== raw.length) throw new BlockFormatError('block length does not match its sections');
  }

  /** Minute of the hour per row; undefined for a block without minutes (a batch block). */
  minutes(): Uint8Array | undefined {
    return this.sections.get('minutes');
  }

  /** Page views per row; null when every row is one. */
  counts(): Uint32Array | null {
    if (this.decodedCounts !== undefined) return this.decodedCounts;
    const section = this.sections.get('counts');
    if (!section) return (this.decodedCounts = null);
    const r = new Reader(section);
    const counts = new Uint32Array(this.rows);
    for (let i = 0; i < this.rows; i += 1) counts[i] = r.varint();
    return (this.decodedCounts = counts);
  }

  column(dimension: Dimension): DimensionColumn {
    const known = this.columns.get(dimension);
    if (known) return known;
    const { indexes, dictionary } = this.lazyColumn(dimension);
    const column = {
      dictionary: Array.from({ length: dictionary.size }, (_, i) => dictionary.at(i)),
      indexes,
    };
    this.columns.set(dimension, column);
    return column;
  }

  /** A column whose dictionary makes its strings when asked for (a breakdown's: only the values counted). */
  lazyColumn(dimension: Dimension): {
    readonly dictionary: LazyDictionary;
    readonly indexes: DimensionColumn['indexes'];
  } {
    const known = this.columns.get(dimension);
    if (known)
      return {
        indexes: known.indexes,
        dictionary: { size: known.dictionary.length, at: (i) => known.dictionary[i]! },
      };
    const lazy = this.lazyColumns.get(dimension);
    if (lazy) return lazy;
    const section = this.sections.get(dimension)!;
    const r = new Reader(section);
    const size = r.varint();
    const dictionary = lazyDictionary(r, section, size);
    const width = indexWidth(size);
    const bytes = section.subarray(r.at);
    const n = this.rows;
    let indexes: Uint8Array | Uint16Array | Uint32Array;
    if (width === 1) indexes = bytes.subarray(0, n);
    else if (width === 2) {
      indexes = new Uint16Array(n);
      for (let i = 0; i < n; i += 1) indexes[i] = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
    } else {
      indexes = new Uint32Array(n);
      for (let i = 0; i < n; i += 1)
        indexes[i] = bytes[3 * i]! | (bytes[3 * i + 1]! << 8) | (bytes[3 * i + 2]! << 16);
    }
    const column = { dictionary, indexes };
    this.lazyColumns.set(dimension, column);
    return column;
  }

  /** Visitor hash per row; NaN for a row without one. */
  hashes(): Float64Array {
    if (this.decodedHashes) return this.decodedHashes;
    const bytes = this.sections.get('hashes')!;
    const hashes = new Float64Array(this.rows);
    for (let i = 0; i < this.rows; i += 1) {
      let h = 0;
      for (let k = 6; k >= 0; k -= 1) h = h * 256 + bytes[i * 7 + k]!;
      hashes[i] = h === NO_HASH ? Number.NaN : h;
    }
    return (this.decodedHashes = hashes);
  }

  /** Sequence numbers per row (speed blocks). */
  sequences(): bigint[] {
    const section = this.sections.get('sequences');
    if (!section) throw new BlockFormatError('this block has no sequence numbers');
    const r = new Reader(section);
    let sequence = BigInt(r.string());
    const out = [sequence];
    for (let i = 1; i < this.rows; i += 1) out.push((sequence += r.bigVarint()));
    return out;
  }
}

/** Brotli at a middle quality: blocks are written once per batch or hour and read by every filtered query. */
export const compressBlock = (raw: Uint8Array): Buffer =>
  brotliCompressSync(raw, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 5,
      [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
    },
  });

export const decodeBlock = (compressed: Uint8Array): Block => new Block(brotliDecompressSync(compressed));

/** Every row of a block (tests and tools). */
export function blockRows(block: Block): BlockRow[] {
  const columns = DIMENSIONS.map((d) => block.column(d));
  const counts = block.counts();
  const hashes = block.hashes();
  const minutes = block.minutes();
  let sequences: bigint[] | undefined;
  try {
    sequences = block.sequences();
  } catch {
    sequences = undefined;
  }
  return Array.from({ length: block.rows }, (_, i) => ({
    values: columns.map((c) => c.dictionary[c.indexes[i]!]!),
    hash: Number.isNaN(hashes[i]!) ? undefined : hashes[i]!,
    count: counts ? counts[i]! : 1,
    ...(minutes ? { minute: minutes[i]! } : {}),
    ...(sequences ? { sequence: sequences[i]!.toString() } : {}),
  }));
}
