import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RankedBlock } from '../../shared/counts.js';
import { exactTop } from '../../shared/views/top.js';

/** A block over a day: its whole-day counts ranked, and the counts the range really takes from it. */
interface Day {
  readonly whole: Map<string, number>;
  readonly inRange: Map<string, number>;
}

function rankedBlock(day: Day, reads: { rows: number }): RankedBlock {
  const ranked = [...day.whole.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return {
    async read(depth) {
      const rows = ranked.slice(0, depth);
      reads.rows += rows.length;
      return { rows, complete: rows.length === ranked.length };
    },
  };
}

function bruteForce(days: readonly Day[], known: Map<string, number>, n: number) {
  const totals = new Map(known);
  for (const day of days) for (const [v, c] of day.inRange) totals.set(v, (totals.get(v) ?? 0) + c);
  return [...totals.entries()]
    .filter(([, t]) => t > 0)
    .map(([value, total]) => ({ value, total }))
    .sort((a, b) => b.total - a.total || (a.value < b.value ? -1 : 1))
    .slice(0, n);
}

const value = fc.constantFrom(...Array.from({ length: 40 }, (_, i) => `v${i}`));
const dayArb = fc
  .array(fc.tuple(value, fc.integer({ min: 1, max: 50 }), fc.boolean(), fc.integer({ min: 0, max: 50 })), {
    maxLength: 40,
  })
  .chain((entries) =>
    fc.boolean().map((partial) => {
      const whole = new Map<string, number>();
      const inRange = new Map<string, number>();
      for (const [v, c, cut, part] of entries) {
        if (whole.has(v)) continue;
        whole.set(v, c);
        // A partial day takes some of the day's hours: at most the whole-day count.
        inRange.set(v, partial && cut ? Math.min(part, c) : c);
      }
      return { whole, inRange };
    }),
  );

describe('exact top-N over ranked blocks', () => {
  it('equals a full aggregation for any blocks, partial days, known counts and N', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(dayArb, { maxLength: 8 }),
        fc.array(fc.tuple(value, fc.integer({ min: 1, max: 30 })), { maxLength: 10 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 8 }),
        async (days, knownEntries, n, depth) => {
          const known = new Map(knownEntries);
          const reads = { rows: 0 };
          const result = await exactTop({
            blocks: days.map((d) => rankedBlock(d, reads)),
            known,
            n,
            depth,
            resolve: async (values) => {
              const truth = new Map(known);
              for (const day of days) for (const [v, c] of day.inRange) truth.set(v, (truth.get(v) ?? 0) + c);
              return new Map(values.map((v) => [v, truth.get(v) ?? 0]));
            },
          });
          expect(result.top).toEqual(bruteForce(days, known, n));
        },
      ),
      { numRuns: 600 },
    );
  });

  it('reads only a prefix of each block on Zipf-like lists', async () => {
    const days: Day[] = Array.from({ length: 30 }, (_, d) => {
      const counts = new Map<string, number>();
      for (let i = 1; i <= 100_000; i += 1) counts.set(`u${(i + d) % 100_000}`, Math.floor(100_000 / i) + 1);
      return { whole: counts, inRange: counts };
    });
    const reads = { rows: 0 };
    let resolved = 0;
    const result = await exactTop({
      blocks: days.map((d) => rankedBlock(d, reads)),
      known: new Map(),
      n: 10,
      resolve: async (values) => {
        resolved += values.length;
        return new Map(
          values.map((v) => [v, days.reduce((sum, d) => sum + (d.inRange.get(v) ?? 0), 0)] as const),
        );
      },
    });
    expect(result.top).toEqual(bruteForce(days, new Map(), 10));
    expect(reads.rows).toBeLessThan(30 * 2_000);
    expect(resolved).toBeLessThan(200);
    // 30 days of 100,000 values, built and brute-forced: about 4 s alone, past vitest's 5 s on a loaded machine.
  }, 60_000);
});
