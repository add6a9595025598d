import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../traffic/generator.js';
import { fromHashes } from '../../shared/sketch/index.js';
import { HOUR_MS } from '../../shared/time.js';
import { RowSpill } from '../../shared/views/spill.js';
import { FIRST_CHUNK_ROWS, type StoreRow, type ViewStoreDeps } from '../../shared/views/format.js';
import { DayReader, ObjectCache, readManifest } from '../../shared/views/reader.js';
import { spillRow, updateDay } from '../../shared/views/writer.js';
import { testStack, type TestStack } from './support/stack.js';

const DAY = Date.UTC(2026, 10, 21);

/** `values` urls in hour 0 (a long tail: most seen once), some in hour 1, a few with visitors. */
function flood(values: number, seed: number): StoreRow[] {
  const random = seededRandom(seed);
  const rows: StoreRow[] = [];
  for (let v = 0; v < values; v += 1) {
    const views = 1 + Math.floor(random() * random() * 40);
    const visitors = v % 97 === 0 ? { visitors: fromHashes([v, v + 1, v + 2]) } : {};
    rows.push({
      hourMs: DAY,
      value: `https://long.example/${v}`,
      views,
      errors: views % 5 === 0 ? 1 : 0,
      ...visitors,
    });
    if (v % 10 === 0)
      rows.push({ hourMs: DAY + HOUR_MS, value: `https://long.example/${v}`, views: 2, errors: 0 });
  }
  return rows;
}

describe('the view store with a day larger than memory', () => {
  let stack: TestStack;
  let deps: ViewStoreDeps;
  beforeAll(async () => {
    stack = await testStack('view-spill');
    deps = {
      s3: stack.clients.s3,
      bucket: stack.names.bucket,
      documents: stack.clients.documents,
      tableName: stack.names.tables.batchViews,
    };
  });
  afterAll(() => stack.destroy());

  const rows = flood(20_000, 3);
  // Chunks grow 4x up to a cap (RANK_CHUNK_MAX_ROWS in production); a small cap shows it on a small day.
  const maxChunkRows = 4096;
  const hours = [DAY, DAY + HOUR_MS];

  it('builds the same objects from disk as from memory, with ranked chunks of at most the cap', async () => {
    await updateDay(deps, { site: 's', dimension: 'in-memory', dayMs: DAY, hours, rows, maxChunkRows });
    const dir = mkdtempSync(join(tmpdir(), 'spill-test-'));
    // 64 KiB of buffered rows: the day goes to disk many times over.
    const spill = new RowSpill({ dir, memoryBytes: 64 << 10 });
    for (const row of rows) spillRow(spill, DAY, row);
    expect(spill.spilled).toBe(true);
    await updateDay(deps, { site: 's', dimension: 'on-disk', dayMs: DAY, hours, rows: spill, maxChunkRows });
    spill.dispose();
    expect(readdirSync(dir)).toEqual([]);

    const memory = (await readManifest(deps, 's', 'in-memory', DAY))!;
    const disk = (await readManifest(deps, 's', 'on-disk', DAY))!;
    // Objects are named by their content: equal digests are equal objects.
    expect({ ...disk, dimension: 'in-memory' }).toEqual(memory);
    expect(memory.rank.map((r) => r.rows)).toEqual([FIRST_CHUNK_ROWS, 1024, 4096, 4096, 4096, 4096, 2336]);
    expect(memory.lookup.length).toBeGreaterThan(16);

    const reader = new DayReader(deps, new ObjectCache());
    const { rows: ranked } = await reader.ranked(disk, Number.MAX_SAFE_INTEGER);
    const totals = new Map<string, number>();
    for (const row of rows) totals.set(row.value, (totals.get(row.value) ?? 0) + row.views);
    expect(ranked).toEqual([...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)));
    const asked = [ranked[0]![0], ranked[5000]![0], ranked[19_999]![0]];
    const found = await reader.lookup(disk, asked);
    for (const value of asked)
      expect(found.get(value)).toEqual(
        rows
          .filter((r) => r.value === value)
          .map(({ visitors: _visitors, ...r }) => r)
          .sort((a, b) => a.hourMs - b.hourMs),
      );
    const sketches = await reader.visitorSketches(disk, ['https://long.example/97'], DAY, DAY + 2 * HOUR_MS);
    expect(sketches.get('https://long.example/97')).toEqual(fromHashes([97, 98, 99]));
  });

  it('keeps the rows of the other hours when one hour is recomputed from a spill on disk', async () => {
    const before = (await readManifest(deps, 's', 'on-disk', DAY))!;
    const spill = new RowSpill({ memoryBytes: 64 << 10 });
    for (const row of rows.filter((r) => r.hourMs === DAY + HOUR_MS)) spillRow(spill, DAY, row);
    const result = await updateDay(deps, {
      site: 's',
      dimension: 'on-disk',
      dayMs: DAY,
      hours: [DAY + HOUR_MS],
      rows: spill,
      maxChunkRows,
    });
    spill.dispose();
    expect(result).toMatchObject({ objectsWritten: 0, manifestWritten: false, replaced: [] });
    expect(await readManifest(deps, 's', 'on-disk', DAY)).toEqual(before);
  });
});
