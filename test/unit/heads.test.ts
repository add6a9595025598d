import { brotliDecompressSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildHeads, HEAD_DEPTH, HEAD_VALUE_MAX_LENGTH, type HeadPart } from '../../shared/batch/heads.js';
import { DIMENSIONS } from '../../shared/event.js';
import { Block, BlockBuilder } from '../../shared/filters/block.js';
import { HOUR_MS } from '../../shared/time.js';

/** Heads hold exact counts for what they list and a floor above everything they do not (shared/batch/heads.ts). */

const DAY = Date.UTC(2026, 10, 20);
const row = (url: string, country: string, source: string, status: string) =>
  DIMENSIONS.map((d) =>
    d === 'url' ? url : d === 'country' ? country : d === 'source' ? source : d === 'status' ? status : '-',
  );

describe('heads of a day', () => {
  it(
    'list exact hourly counts, a floor above every unlisted url, and no part for overlong values',
    { timeout: 60_000 },
    () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              hour: fc.integer({ min: 0, max: 23 }),
              url: fc.integer({ min: 0, max: 400 }),
              country: fc.constantFrom('DE', 'US', 'FR'),
              status: fc.constantFrom('200', '404'),
              count: fc.integer({ min: 1, max: 3 }),
            }),
            { minLength: 900, maxLength: 1500 },
          ),
          (rows) => {
            const long = 'x'.repeat(HEAD_VALUE_MAX_LENGTH + 1);
            const builders = new Map<number, BlockBuilder>();
            for (const r of rows) {
              let b = builders.get(r.hour);
              if (!b) builders.set(r.hour, (b = new BlockBuilder()));
              b.add({
                values: row(`/p/${r.url}`, r.country, r.url === 0 ? long : 'direct', r.status),
                hash: 1,
                count: r.count,
              });
            }
            const hours = [...builders].map(([hour, b]) => ({
              hourMs: DAY + hour * HOUR_MS,
              blocks: [new Block(b.encode())],
            }));
            const { body, index } = buildHeads(DAY, hours);
            const part = (dimension: 'country' | 'source', value: string): HeadPart | undefined => {
              const at = index.url?.[dimension]?.values[value];
              return (
                at &&
                (JSON.parse(brotliDecompressSync(body.subarray(at[0], at[0] + at[1])).toString()) as HeadPart)
              );
            };
            for (const country of ['DE', 'US', 'FR']) {
              const mine = rows.filter((r) => r.country === country);
              const p = part('country', country);
              if (mine.length === 0) {
                expect(p).toBeUndefined();
                continue;
              }
              const day = new Map<string, number>();
              for (const r of mine) day.set(`/p/${r.url}`, (day.get(`/p/${r.url}`) ?? 0) + r.count);
              expect(p!.top.length).toBe(Math.min(HEAD_DEPTH, day.size));
              const listed = new Set(p!.top.map(([url]) => url));
              for (const [url, ...cells] of p!.top) {
                let sum = 0;
                for (let k = 0; k < cells.length; k += 3) {
                  const hour = cells[k]!;
                  const inHour = mine.filter((r) => `/p/${r.url}` === url && r.hour === hour);
                  expect(cells[k + 1]).toBe(inHour.reduce((s, r) => s + r.count, 0));
                  expect(cells[k + 2]).toBe(
                    inHour.filter((r) => r.status === '404').reduce((s, r) => s + r.count, 0),
                  );
                  sum += cells[k + 1]!;
                }
                expect(sum).toBe(day.get(url));
              }
              for (const [url, count] of day)
                if (!listed.has(url)) expect(count).toBeLessThanOrEqual(p!.floor);
              if (day.size <= HEAD_DEPTH) expect(p!.floor).toBe(0);
              expect(p!.hours.reduce((s, [, views]) => s + views, 0)).toBe(
                mine.reduce((s, r) => s + r.count, 0),
              );
            }
            expect(part('source', long)).toBeUndefined();
            expect(index.url!.source!.capped).toBe(rows.some((r) => r.url === 0));
          },
        ),
        { numRuns: 40 },
      );
    },
  );
});
