import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBatchHandler } from '../../lambdas/batch/handler.js';
import { createDuckDbEngine } from '../../local/athena-duckdb.js';
import { asRecords, parquetBytes } from '../../local/parquet.js';
import { GARBAGE_GRACE_MS } from '../../shared/batch/run.js';
import { cubeObjectKeys } from '../../shared/batch/cube.js';
import { DIMENSIONS, type PageView } from '../../shared/event.js';
import { PREFIXES, DEFAULT_SETTINGS } from '../../shared/resources.js';
import { DAY_MS, HOUR_MS, hourPartitionPath, MINUTE_MS } from '../../shared/time.js';
import { objectKeys } from '../../shared/views/format.js';
import { readManifest } from '../../shared/views/reader.js';
import { notifyLanded, testStack, type TestStack } from './support/stack.js';

/**
 * The view store replaces a day's objects when a run recomputes an hour of it, and a later run deletes the
 * replaced ones once no reader can still hold the manifest that named them (GARBAGE_GRACE_MS).
 */
describe('replaced view objects', () => {
  let stack: TestStack;
  const t0 = Date.UTC(2026, 10, 25, 12, 0);
  const hour = t0 - 3 * HOUR_MS;

  beforeAll(async () => {
    stack = await testStack('garbage');
  });
  afterAll(() => stack?.destroy());

  const views = (urls: string[]): PageView[] =>
    urls.map((url, i) => ({
      created: hour + i * 1000,
      url,
      status: 200,
      country: 'DE',
      browser: 'FF',
      userId: `u${i}`,
      site: DEFAULT_SETTINGS.defaultSite,
    }));

  async function land(name: string, events: PageView[]) {
    await stack.clients.s3.send(
      new PutObjectCommand({
        Bucket: stack.names.bucket,
        Key: `${PREFIXES.raw}${hourPartitionPath(hour)}/${name}.parquet`,
        Body: await parquetBytes(asRecords(events)),
      }),
    );
    await notifyLanded(stack);
  }

  const run = (atMs: number) =>
    createBatchHandler({
      clients: stack.clients,
      config: stack.config,
      engine: createDuckDbEngine({
        s3: stack.clients.s3,
        bucket: stack.names.bucket,
        cacheDir: mkdtempSync(join(tmpdir(), 'garbage-cache-')),
      }),
      clock: () => atMs,
    })();

  async function storedObjects(): Promise<string[]> {
    const { Contents = [] } = await stack.clients.s3.send(
      new ListObjectsV2Command({ Bucket: stack.names.bucket, Prefix: PREFIXES.batchViews }),
    );
    return Contents.map((o) => o.Key!).sort();
  }

  async function namedByManifests(): Promise<string[]> {
    const store = {
      s3: stack.clients.s3,
      bucket: stack.names.bucket,
      documents: stack.clients.documents,
      tableName: stack.names.tables.batchViews,
    };
    const dayMs = Math.floor(hour / DAY_MS) * DAY_MS;
    const keys: string[] = [];
    for (const dimension of DIMENSIONS) {
      const manifest = await readManifest(store, DEFAULT_SETTINGS.defaultSite, dimension, dayMs);
      if (manifest) keys.push(...objectKeys(manifest));
    }
    // The filter cube's hour objects and heads, named by its day manifest (docs/filters.md).
    keys.push(...(await cubeObjectKeys(store, dayMs, dayMs + DAY_MS, stack.config.settings.defaultSite)));
    return keys.sort();
  }

  it('deletes the objects a recomputed hour replaced, once the grace period has passed', async () => {
    await land('first', views(['https://example.com/a', 'https://example.com/b']));
    await run(t0);
    const first = await namedByManifests();

    await land('second', views(['https://example.com/c', 'https://example.com/d', 'https://example.com/e']));
    await run(t0 + MINUTE_MS);
    const current = await namedByManifests();
    expect(first.filter((key) => !current.includes(key)).length).toBeGreaterThan(0);
    // Within the grace period a reader holding the previous manifest still finds every object it names.
    expect(await storedObjects()).toEqual(expect.arrayContaining([...first, ...current]));

    await run(t0 + MINUTE_MS + GARBAGE_GRACE_MS + MINUTE_MS);
    expect(await storedObjects()).toEqual(current);
  });
});
