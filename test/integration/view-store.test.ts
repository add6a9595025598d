import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS } from '../../shared/time.js';
import { FIRST_CHUNK_ROWS, type StoreRow, type ViewStoreDeps } from '../../shared/views/format.js';
import { DayReader, ObjectCache, readManifest } from '../../shared/views/reader.js';
import { updateDay } from '../../shared/views/writer.js';
import { seededRandom } from '../../traffic/generator.js';
import { testStack, type TestStack } from './support/stack.js';

const DAY = Date.UTC(2026, 10, 20);

/** Hourly rows of `values` urls over the given hours, Zipf-like counts, errors on some. */
function rows(values: number, hours: readonly number[], seed: number): StoreRow[] {
  const random = seededRandom(seed);
  const out: StoreRow[] = [];
  for (const hour of hours) {
    for (let v = 1; v <= values; v += 1) {
      const views = Math.floor((values / v) * random());
      if (views > 0)
        out.push({ hourMs: DAY + hour * HOUR_MS, value: `https://h.example/${v}`, views, errors: views % 3 });
    }
  }
  return out;
}

describe('the view store', () => {
  let stack: TestStack;
  let deps: ViewStoreDeps;
  const puts: string[] = [];
  beforeAll(async () => {
    stack = await testStack('view-store');
    deps = {
      s3: stack.clients.s3,
      bucket: stack.names.bucket,
      documents: stack.clients.documents,
      tableName: stack.names.tables.batchViews,
      onRequest: (request) => {
        if (request.kind === 'put') puts.push(request.kind);
      },
    };
  });
  afterAll(() => stack.destroy());

  const byValue = (list: readonly StoreRow[]) => {
    const map = new Map<string, StoreRow[]>();
    for (const row of list) map.set(row.value, [...(map.get(row.value) ?? []), row]);
    for (const hits of map.values()) hits.sort((a, b) => a.hourMs - b.hourMs);
    return map;
  };

  const written = rows(5000, [0, 1, 2], 1);

  it('returns every value exactly, from the head chunk or from its lookup shard, and ranks them', async () => {
    await updateDay(deps, {
      site: 's',
      dimension: 'url',
      dayMs: DAY,
      hours: [0, 1, 2].map((h) => DAY + h * HOUR_MS),
      rows: written,
    });
    const manifest = (await readManifest(deps, 's', 'url', DAY))!;
    expect(manifest.lookup.length).toBeGreaterThan(4);
    expect(manifest.values).toBeGreaterThan(FIRST_CHUNK_ROWS * 4);
    const reader = new DayReader(deps, new ObjectCache());
    const { rows: ranked, complete } = await reader.ranked(manifest, Number.MAX_SAFE_INTEGER);
    expect(complete).toBe(true);
    const expected = byValue(written);
    const totals = [...expected.entries()]
      .map(([value, hits]) => [value, hits.reduce((sum, h) => sum + h.views, 0)] as const)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    expect(ranked).toEqual(totals);
    // Values from the head, from deep in the list, and one that has no rows.
    const asked = [totals[0]![0], totals[300]![0], totals[totals.length - 1]![0], 'https://h.example/none'];
    const found = await reader.lookup(manifest, asked);
    for (const value of asked.slice(0, 3)) expect(found.get(value)).toEqual(expected.get(value));
    expect(found.get('https://h.example/none')).toEqual([]);
  });

  it('rewrites only the objects whose content changed, and nothing when a recomputed hour is the same', async () => {
    const before = (await readManifest(deps, 's', 'url', DAY))!;
    puts.length = 0;
    const same = written.filter((r) => r.hourMs === DAY + HOUR_MS);
    const unchanged = await updateDay(deps, {
      site: 's',
      dimension: 'url',
      dayMs: DAY,
      hours: [DAY + HOUR_MS],
      rows: same,
    });
    expect(unchanged).toMatchObject({ objectsWritten: 0, manifestWritten: false, replaced: [] });
    expect(puts).toEqual([]);

    // One late page view of one value in hour 2 changes its shard, the ranked chunks, and nothing else.
    const hour2 = written.filter((r) => r.hourMs === DAY + 2 * HOUR_MS);
    const bumped = hour2.map((r) =>
      r.value === 'https://h.example/4000' ? { ...r, views: r.views + 1 } : r,
    );
    if (!bumped.some((r) => r.value === 'https://h.example/4000'))
      bumped.push({ hourMs: DAY + 2 * HOUR_MS, value: 'https://h.example/4000', views: 1, errors: 0 });
    const changed = await updateDay(deps, {
      site: 's',
      dimension: 'url',
      dayMs: DAY,
      hours: [DAY + 2 * HOUR_MS],
      rows: bumped,
    });
    const after = (await readManifest(deps, 's', 'url', DAY))!;
    const changedShards = after.lookup.filter((digest, i) => digest !== before.lookup[i]).length;
    expect(changedShards).toBe(1);
    expect(changed.objectsWritten).toBeLessThanOrEqual(1 + after.rank.length);
    expect(changed.replaced.length).toBe(changed.objectsWritten);
  });
});
