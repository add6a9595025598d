import { DEFAULT_SETTINGS } from '../../shared/resources.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFailingHours, HOUR_RETRY_BUDGET } from '../../shared/batch/retries.js';
import { clockHorizon, type BatchDeps } from '../../shared/batch/run.js';
import { readDirtyHours } from '../../shared/batch/catalog.js';
import type { PageView } from '../../shared/event.js';
import { PageViewGenerator } from '../../traffic/generator.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import type { SqlEngine } from '../../shared/sql/index.js';
import { DAY_MS, dayBucket, HOUR_MS, hourBucket, MINUTE_MS, toIso } from '../../shared/time.js';
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

/** The engine, except that queries of one day fail after their first chunk of rows (a hostile or broken hour). */
function failingOn(engine: SqlEngine, day: () => string | undefined): SqlEngine & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async *query(name, parameters, partitions) {
      // The view SQL's parameters: the default site, then the day (shared/sql/hourly_views.sql).
      const dt = parameters[1]!;
      calls.push(dt);
      let chunks = 0;
      for await (const chunk of engine.query(name, parameters, partitions)) {
        if (dt === day() && chunks > 0) throw new Error(`query of ${dt} failed`);
        chunks += 1;
        yield chunk;
      }
      if (dt === day()) throw new Error(`query of ${dt} failed`);
    },
  };
}

describe('a failing day does not stall the batch layer', () => {
  let stack: TestStack;
  const sent: PageView[] = [];
  // Three UTC days of history, the last ending an hour ago.
  const now = hourBucket(Date.now()) + 20 * MINUTE_MS;
  const first = dayBucket(now) - 2 * DAY_MS;
  const badDay = toIso(first + DAY_MS).slice(0, 10);
  let failing: string | undefined = badDay;
  let wrapped: ReturnType<typeof failingOn>;
  // The stand-in's checkpoints persist between landings, so each landing writes only the new records.
  const landing = { stateDir: mkdtempSync(join(tmpdir(), 'firehose-faults-')) };

  const deps = (clock: number, extra: Partial<BatchDeps> = {}) => batchDeps(stack, wrapped, clock, extra);
  const state = () => ({ documents: stack.clients.documents, tableName: stack.names.tables.batchState });
  const reader = () => batchReader(stack);

  beforeAll(async () => {
    stack = await testStack('batch-faults', { settings: { firehoseBufferSeconds: 60 } });
    wrapped = failingOn(localEngine(stack), () => failing);
    const records = [
      ...new PageViewGenerator({ seed: 31, startMs: first, rate: 1 / 300 }).take(
        Math.floor((now - 2 * HOUR_MS - first) / 300_000),
      ),
    ];
    sent.push(...records.map((r) => r.event!));
    await putRecordsReliably(stack.clients.kinesis, stack.names.stream, records);
    await landOnS3(stack, landing);
  });
  afterAll(() => stack.destroy());

  it('computes the other days, keeps H before the failing one, and retries it only after its backoff', async () => {
    const summary = await batchRun(deps(now));
    const badStart = first + DAY_MS;
    const badHours = new Set(
      sent.filter((e) => dayBucket(e.created) === badStart).map((e) => hourBucket(e.created)),
    );
    expect(summary.outcome).toBe('published');
    expect(summary.failedHours).toBe(badHours.size);
    expect(summary.hours).toBe(new Set(sent.map((e) => hourBucket(e.created))).size - badHours.size);
    expect(summary.horizon!.horizonMs).toBe(Math.min(...badHours));
    expect(summary.candidateLagMs).toBe(clockHorizon(now, stack.config.settings) - Math.min(...badHours));
    // The first day is served from exact batch views; the failing day's marks are kept for a later run.
    const horizon = summary.horizon!;
    expect(
      await reader().readTotals(
        { site: DEFAULT_SETTINGS.defaultSite, fromMs: first, toMs: horizon.horizonMs, granularity: 'hour' },
        horizon,
      ),
    ).toEqual(truthCounts(sent, 'total', 'hour', { toMs: horizon.horizonMs }));
    const marked = new Set((await readDirtyHours(state())).map((d) => d.hourMs));
    expect(marked).toEqual(badHours);
    const recorded = await readFailingHours(state());
    expect([...recorded.keys()].sort()).toEqual([...badHours].sort());
    expect([...recorded.values()].every((f) => f.attempts === 1 && f.lastError.includes('failed'))).toBe(
      true,
    );

    // A run before the backoff (one schedule period after the first failure) has passed does not try it again.
    const calls = wrapped.calls.length;
    const next = await batchRun(deps(now + 5 * MINUTE_MS));
    expect(wrapped.calls.slice(calls)).not.toContain(badDay);
    expect(next).toMatchObject({ failedHours: 0, deferredHours: badHours.size });
    expect(next.horizon!.horizonMs).toBe(horizon.horizonMs);
  });

  it('alarms once the day has used its retry budget, and moves H on as soon as it computes', async () => {
    let clock = now + 15 * MINUTE_MS;
    let summary;
    for (let attempt = 2; attempt <= HOUR_RETRY_BUDGET; attempt += 1) {
      clock += 4 * stack.config.settings.batchScheduleMinutes * MINUTE_MS;
      summary = await batchRun(deps(clock));
      expect(summary.failedHours, `attempt ${attempt}`).toBeGreaterThan(0);
    }
    expect(summary!.hoursOverRetryBudget).toBe(summary!.failedHours);
    failing = undefined;
    clock += 4 * stack.config.settings.batchScheduleMinutes * MINUTE_MS;
    const fixed = await batchRun(deps(clock));
    expect(fixed).toMatchObject({ failedHours: 0, hoursOverRetryBudget: 0, deferredHours: 0 });
    expect(fixed.horizon!.horizonMs).toBe(clockHorizon(clock, stack.config.settings));
    expect((await readFailingHours(state())).size).toBe(0);
    const horizon = fixed.horizon!;
    expect(
      await reader().readTotals(
        { site: DEFAULT_SETTINGS.defaultSite, fromMs: first, toMs: horizon.horizonMs, granularity: 'hour' },
        horizon,
      ),
    ).toEqual(truthCounts(sent, 'total', 'hour', { toMs: horizon.horizonMs }));
  });

  it('moves H nowhere while Firehose reports nothing, or reads records but delivers none', async () => {
    const before = (await reader().readHorizon())!;
    const later = now + 20 * HOUR_MS;
    for (const readings of [[], [{ atMs: later - MINUTE_MS, millisBehindLatestMs: 0, recordsRead: 40 }]]) {
      const run = await batchRun(deps(later, { delivery: { readings: async () => readings } }));
      expect(run.horizon!.horizonMs).toBe(before.horizonMs);
      expect(run.candidateLagMs).toBe(clockHorizon(later, stack.config.settings) - before.horizonMs);
    }
  });

  it('starts no day past its deadline, and H waits for the days it left', async () => {
    const late = [
      ...new PageViewGenerator({ seed: 32, startMs: first + 3 * HOUR_MS, rate: 1 / 60 }).take(20),
    ];
    sent.push(...late.map((r) => r.event!));
    await putRecordsReliably(stack.clients.kinesis, stack.names.stream, late);
    await landOnS3(stack, landing);
    const clock = now + 10 * HOUR_MS;
    const before = (await reader().readHorizon())!;
    const out = await batchRun(deps(clock, { deadlineMs: clock }));
    expect(out).toMatchObject({
      hours: 0,
      deferredHours: new Set(late.map((r) => hourBucket(r.event!.created))).size,
    });
    expect(out.horizon!.horizonMs).toBe(before.horizonMs);
    const done = await batchRun(deps(clock));
    expect(done.horizon!.horizonMs).toBe(clockHorizon(clock, stack.config.settings));
    const horizon = done.horizon!;
    expect(
      await reader().readTotals(
        { site: DEFAULT_SETTINGS.defaultSite, fromMs: first, toMs: horizon.horizonMs, granularity: 'hour' },
        horizon,
      ),
    ).toEqual(truthCounts(sent, 'total', 'hour', { toMs: horizon.horizonMs }));
  });
});
