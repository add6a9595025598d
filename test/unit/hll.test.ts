import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  add,
  decode,
  empty,
  encode,
  encodeBinary,
  estimate,
  fromHashes,
  registerOf,
  SketchFormatError,
  SPARSE_LIMIT,
  STANDARD_ERROR,
  union,
  unionAll,
  userHash,
  type VisitorSketch,
} from '../../shared/sketch/index.js';
import { EDGE_HASHES, hashWith } from '../support/sketch.js';

const MAX_HASH = 2 ** 52 - 1;
const anyHash = fc.oneof(
  fc.bigInt({ min: 0n, max: BigInt(MAX_HASH) }).map(Number),
  fc.constantFrom(...EDGE_HASHES),
);
/** Hash lists around the sparse limit, so that sketches come sparse and dense. */
const hashLists = fc.oneof(
  fc.array(anyHash, { maxLength: 40 }),
  fc.array(anyHash, { minLength: SPARSE_LIMIT - 20, maxLength: SPARSE_LIMIT + 20 }),
  fc.array(anyHash, { maxLength: 700 }),
);
const sketches = hashLists.map(fromHashes);
/** Equal sketches have equal encodings (the form is canonical), so encodings compare sketches. */
const same = (a: VisitorSketch, b: VisitorSketch) => expect(encode(a)).toEqual(encode(b));

describe('user hashes', () => {
  it('are the top 52 bits of the SHA-256 of the UTF-8 user id', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (id) => {
        const digest = createHash('sha256').update(Buffer.from(id, 'utf8')).digest('hex');
        expect(BigInt(userHash(id))).toBe(BigInt(`0x${digest}`) >> 204n);
      }),
    );
  });

  it('never change: the master dataset stores them', () => {
    expect(userHash('723679')).toBe(1630476143465567);
    expect(userHash('1')).toBe(1891620219777871);
    expect(userHash('é🙂')).toBe(2032100752160421);
  });
});

describe('the register of a hash', () => {
  it('takes the top 14 bits as index and the leading zeros of the next 32, plus one, as rho', () => {
    expect(registerOf(0)).toEqual({ index: 0, rho: 33 });
    expect(registerOf(MAX_HASH)).toEqual({ index: 16383, rho: 1 });
    expect(registerOf(hashWith(5, 0))).toEqual({ index: 5, rho: 33 });
    expect(registerOf(hashWith(5, 1))).toEqual({ index: 5, rho: 32 });
    expect(registerOf(hashWith(5, 2 ** 31))).toEqual({ index: 5, rho: 1 });
    expect(registerOf(hashWith(5, 2 ** 31 - 1))).toEqual({ index: 5, rho: 2 });
    expect(registerOf(hashWith(16383, 2 ** 32 - 1))).toEqual({ index: 16383, rho: 1 });
    // The low 6 bits play no part.
    expect(registerOf(hashWith(7, 12345) + 63)).toEqual(registerOf(hashWith(7, 12345)));
  });

  it('agrees with a bit-string reading of the hash', () => {
    fc.assert(
      fc.property(anyHash, (hash) => {
        const bits = hash.toString(2).padStart(52, '0');
        const w = bits.slice(14, 46);
        expect(registerOf(hash)).toEqual({
          index: parseInt(bits.slice(0, 14), 2),
          rho: (w.indexOf('1') + 1 || 33) as number,
        });
      }),
    );
  });

  it("is what the SQL's floor(log2(2w + 1)) gives with Trino's log2, ln(x) / ln(2), at every bit boundary", () => {
    const trinoLog2 = (x: number) => Math.log(x) / Math.log(2);
    const ws = [0, 2 ** 32 - 1];
    for (let k = 0; k < 32; k += 1) ws.push(2 ** k - 1, 2 ** k, 2 ** k + 1);
    for (const w of ws) expect(33 - Math.floor(trinoLog2(2 * w + 1))).toBe(registerOf(hashWith(0, w)).rho);
  });
});

describe('sketch union', () => {
  it('is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(sketches, sketches, sketches, (a, b, c) => {
        same(union(a, b), union(b, a));
        same(union(union(a, b), c), union(a, union(b, c)));
        same(union(a, a), a);
        same(union(union(a, b), b), union(a, b));
      }),
      { numRuns: 150 },
    );
  });

  it('gives the sketch of the union of the hash sets, whatever the grouping', () => {
    fc.assert(
      fc.property(fc.array(hashLists, { maxLength: 8 }), (lists) => {
        const expected = fromHashes(lists.flat());
        same(unionAll(lists.map(fromHashes)), expected);
        same(lists.map(fromHashes).reduce(union, empty()), expected);
        same(lists.flat().reduce(add, empty()), expected);
      }),
      { numRuns: 100 },
    );
  });

  it('keeps the exact hashes up to the sparse limit and registers above it', () => {
    const hashes = Array.from({ length: SPARSE_LIMIT + 1 }, (_, i) => userHash(`u${i}`));
    const full = fromHashes(hashes.slice(0, SPARSE_LIMIT));
    expect(full.kind).toBe('sparse');
    expect(estimate(full)).toBe(SPARSE_LIMIT);
    expect(add(full, hashes[SPARSE_LIMIT]!).kind).toBe('dense');
    expect(union(full, fromHashes([hashes[0]!])).kind).toBe('sparse');
  });

  it('never changes its arguments', () => {
    fc.assert(
      fc.property(sketches, sketches, anyHash, (a, b, hash) => {
        const [before, other] = [encodeBinary(a), encodeBinary(b)];
        union(a, b);
        add(a, hash);
        expect(encodeBinary(a)).toEqual(before);
        expect(encodeBinary(b)).toEqual(other);
      }),
      { numRuns: 100 },
    );
  });

  it('rejects what is not a 52-bit hash', () => {
    for (const bad of [-1, 2 ** 52, 1.5, Number.NaN])
      expect(() => fromHashes([bad]), String(bad)).toThrow(RangeError);
  });
});

describe('sketch encoding', () => {
  it('round-trips as JSON and as bytes', () => {
    fc.assert(
      fc.property(sketches, (sketch) => {
        same(decode(JSON.parse(JSON.stringify(encode(sketch))) as number[] | string), sketch);
        same(decode(encodeBinary(sketch)), sketch);
      }),
      { numRuns: 150 },
    );
  });

  it('round-trips full registers, and stays within 12,289 bytes (16,390 characters of JSON)', () => {
    for (const size of [SPARSE_LIMIT + 1, 3000, 5000, 100_000]) {
      const sketch = fromHashes(Array.from({ length: size }, (_, i) => userHash(`r${i}`)));
      same(decode(encode(sketch)), sketch);
      expect(encodeBinary(sketch).length).toBeLessThanOrEqual(12_289);
      expect(JSON.stringify(encode(sketch)).length).toBeLessThanOrEqual(16_390);
    }
  });

  it('encodes a sparse sketch as its ascending hashes', () => {
    expect(encode(fromHashes([30, 10, 20, 10]))).toEqual([10, 20, 30]);
    expect(encode(empty())).toEqual([]);
    expect(Buffer.from(encodeBinary(fromHashes([MAX_HASH])))).toEqual(
      Buffer.from([0, 15, 255, 255, 255, 255, 255, 255]),
    );
  });

  it('reads unordered, repeated and overlong hash lists (a DynamoDB number set) as the sketch of their set', () => {
    const hashes = Array.from({ length: 600 }, (_, i) => userHash(`s${i}`));
    same(decode(new Set(hashes.slice(0, 100))), fromHashes(hashes.slice(0, 100)));
    same(
      decode([...hashes.slice(0, 10)].reverse().concat(hashes.slice(0, 10))),
      fromHashes(hashes.slice(0, 10)),
    );
    same(decode(hashes), fromHashes(hashes));
    expect(decode(hashes).kind).toBe('dense');
  });

  it('rejects malformed input with a SketchFormatError', () => {
    const bad: unknown[] = [
      [-1],
      [2 ** 52],
      [1.5],
      ['12'],
      'AwAAAA==', // unknown tag 3
      Uint8Array.from([0, 1, 2]), // sparse body not a multiple of 7 bytes
      Uint8Array.from([1, 0, 0, 34]), // register 0 with rho 34
      Uint8Array.from([1, 0, 0, 0]), // register 0 with rho 0
      Uint8Array.from([2, 0, 0, 0]), // packed registers cut short
    ];
    for (const input of bad)
      expect(() => decode(input as never), JSON.stringify(input)).toThrow(SketchFormatError);
  });
});

describe('visitor estimates', () => {
  /** Users u0…u249999 with their hashes; a bucket is a run of them, so overlaps are known exactly. */
  const UNIVERSE = 250_000;
  const hashes = Array.from({ length: UNIVERSE }, (_, i) => userHash(`user-${i}`));
  const bucket = (start: number, length: number) => fromHashes(hashes.slice(start, start + length));
  const exactUnion = (runs: readonly { start: number; length: number }[]) => {
    const seen = new Uint8Array(UNIVERSE);
    for (const { start, length } of runs) seen.fill(1, start, Math.min(UNIVERSE, start + length));
    return seen.reduce((sum, v) => sum + v, 0);
  };
  const run = fc.record({
    start: fc.nat(UNIVERSE - 1),
    length: fc.oneof(
      { weight: 6, arbitrary: fc.nat(SPARSE_LIMIT) },
      { weight: 3, arbitrary: fc.nat(20_000) },
      { weight: 1, arbitrary: fc.nat(200_000) },
    ),
  });
  // Few buckets keep many unions near the sparse limit; many reach up to ~200,000 visitors.
  const runs = fc.oneof(
    fc.array(run, { minLength: 1, maxLength: 4 }),
    fc.array(run, { minLength: 1, maxLength: 30 }),
  );

  it('are exact up to the sparse limit and within 3 standard errors above it, over random unions', () => {
    // A fixed seed: the check is a reproducible experiment (3σ would fail ~0.3% of fresh draws).
    fc.assert(
      fc.property(runs, fc.array(fc.nat(), { minLength: 30, maxLength: 30 }), (buckets, order) => {
        // Merge in a random tree, as buckets, layers and the split at H would be.
        let pending = buckets.map(({ start, length }) => bucket(start, length));
        for (let i = 0; pending.length > 1; i += 1) {
          const at = order[i % order.length]! % (pending.length - 1);
          pending = [
            ...pending.slice(0, at),
            union(pending[at]!, pending[at + 1]!),
            ...pending.slice(at + 2),
          ];
        }
        const exact = exactUnion(buckets);
        const estimated = estimate(pending[0]!);
        if (exact <= SPARSE_LIMIT) expect(estimated).toBe(exact);
        else expect(Math.abs(estimated - exact)).toBeLessThanOrEqual(3 * STANDARD_ERROR * exact);
      }),
      { seed: 18, numRuns: 60 },
    );
  }, 60_000);

  it('have a root-mean-square error within the standard error from 300 to 200,000 visitors', () => {
    for (const size of [300, 2_000, 20_000, 200_000]) {
      const samples = Math.min(20, Math.floor(UNIVERSE / size));
      let squares = 0;
      for (let i = 0; i < samples; i += 1) {
        const relative = estimate(bucket(i * size, size)) / size - 1;
        squares += relative * relative;
      }
      // One sample at 200k: a 3σ bound there, the RMS bound where there are 12 or more.
      const bound = samples >= 12 ? 1.2 * STANDARD_ERROR : 3 * STANDARD_ERROR;
      expect(Math.sqrt(squares / samples), `${size} visitors`).toBeLessThanOrEqual(bound);
    }
  });

  it('never fall to the sparse limit or below once a sketch turns dense', () => {
    const hashes = Array.from({ length: SPARSE_LIMIT + 200 }, (_, i) => userHash(`dense-${i}`));
    for (let size = SPARSE_LIMIT + 1; size <= hashes.length; size += 1)
      expect(estimate(fromHashes(hashes.slice(0, size)))).toBeGreaterThan(SPARSE_LIMIT);
  });

  it('count the empty sketch as zero', () => {
    expect(estimate(empty())).toBe(0);
  });
});
