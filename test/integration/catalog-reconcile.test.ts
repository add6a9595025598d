import { DEFAULT_SETTINGS } from '../../shared/resources.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCatalogHandler } from '../../lambdas/catalog/handler.js';
import { readDirtyHours } from '../../shared/batch/catalog.js';
import type { PageView } from '../../shared/event.js';
import { PageViewGenerator, seededRandom } from '../../traffic/generator.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { HOUR_MS, hourBucket, MINUTE_MS } from '../../shared/time.js';
import { S3NotificationStandIn } from '../../local/s3-notifications.js';
import { allBreakdownRows } from '../support/breakdown.js';
import { truthCounts } from '../support/ground-truth.js';
import {
  batchDeps,
  batchRun,
  batchReader,
  landOnS3,
  localEngine,
  testStack,
  type TestStack,
} from './support/stack.js';

describe('every landed object is counted, even when its notification is lost', () => {
  let stack: TestStack;
  let notifications: S3NotificationStandIn;
  const sent: PageView[] = [];
  const now = hourBucket(Date.now()) + 20 * MINUTE_MS;
  const first = hourBucket(now) - 12 * HOUR_MS;
  const landing = { stateDir: mkdtempSync(join(tmpdir(), 'firehose-reconcile-')), notify: false };

  beforeAll(async () => {
    stack = await testStack('reconcile');
    // Half of S3's notifications never reach the catalog.
    notifications = new S3NotificationStandIn({
      s3: stack.clients.s3,
      bucket: stack.names.bucket,
      handler: createCatalogHandler({ clients: stack.clients, config: stack.config }),
      dropFraction: 0.5,
      random: seededRandom(7),
    });
    // Three landings over the same 11 hours: most hours receive several objects.
    for (const seed of [51, 52, 53]) {
      const records = [...new PageViewGenerator({ seed, startMs: first, rate: 1 / 240 }).take(150)];
      sent.push(...records.map((r) => r.event!));
      await putRecordsReliably(stack.clients.kinesis, stack.names.stream, records);
      await landOnS3(stack, landing);
      await notifications.sync();
    }
  });
  afterAll(() => stack.destroy());

  it('marks what the lost notifications left unmarked, and the views are exact', async () => {
    expect(notifications.stats.dropped).toBeGreaterThan(3);
    const state = { documents: stack.clients.documents, tableName: stack.names.tables.batchState };
    const hoursWithData = new Set(sent.map((e) => hourBucket(e.created)));
    const marked = new Set((await readDirtyHours(state)).map((d) => d.hourMs));
    // Without reconciliation some hours would never be computed.
    expect([...hoursWithData].filter((h) => !marked.has(h)).length).toBeGreaterThan(0);

    const deps = batchDeps(stack, localEngine(stack), now);
    const summary = await batchRun(deps);
    // Exactly the objects whose notification was lost.
    expect(summary.unmarkedObjects).toBe(notifications.stats.dropped);
    expect(summary.hours).toBe(hoursWithData.size);
    const reader = batchReader(stack);
    const horizon = summary.horizon!;
    expect(
      await reader.readTotals(
        { site: DEFAULT_SETTINGS.defaultSite, fromMs: first, toMs: horizon.horizonMs, granularity: 'hour' },
        horizon,
      ),
    ).toEqual(truthCounts(sent, 'total', 'hour', { toMs: horizon.horizonMs }));
    expect(await allBreakdownRows(reader, DEFAULT_SETTINGS.defaultSite, 'url', first, horizon)).toEqual(
      truthCounts(sent, 'url', 'hour', { toMs: horizon.horizonMs }),
    );

    // Reconciliation finds nothing more, and a run with nothing new computes nothing.
    expect(await batchRun({ ...deps, clock: () => now + 15 * MINUTE_MS })).toMatchObject({
      unmarkedObjects: 0,
      hours: 0,
    });
  });
});
