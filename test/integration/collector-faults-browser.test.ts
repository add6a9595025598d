import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBatchHandler } from '../../lambdas/batch/handler.js';
import type { EventStreamWriter } from '../../shared/collection/stream-writer.js';
import type { PageViewsResponse } from '../../shared/api-types.js';
import { HOUR_MS, hourBucket, toIso } from '../../shared/time.js';
import { createDuckDbEngine } from '../../local/athena-duckdb.js';
import type { EdgeFault, ViewerRequest } from '../../local/cloudfront.js';
import { startLocalStack, type LocalStack } from '../../local/stack.js';
import { launchChromium } from '../support/browser.js';
import { isolatedNames } from './support/stack.js';
import { streamEvents } from './support/stream.js';

/** The browser's User-Agent, for every request it makes (HeadlessChrome would be dropped as a bot). */
const CHROME_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36';

type Fault = 'stream-503' | Exclude<EdgeFault, 'pass'>;
const FAULTS: readonly Fault[] = ['stream-503', 'drop-before-origin', 'drop-after-origin'];

/**
 * Every page view meets one fault on the first of the tracker's requests that carries it, in turn: the collector
 * answers 503 (the stream refused its record), the connection drops before the request reaches the collector, or
 * after the collector stored it (the answer is lost, so the retry stores it again). Later requests pass. A beacon
 * (`Sec-Fetch-Mode: no-cors`: sendBeacon on pagehide) is never faulted: it is the browser's delivery of a page that
 * is gone, which no page code can retry; the tracker's part is to send it with everything still unanswered.
 */
class FaultPlan {
  readonly applied: Record<Fault, number> = {
    'stream-503': 0,
    'drop-before-origin': 0,
    'drop-after-origin': 0,
  };
  private readonly seen = new Set<string>();
  private readonly refuseAtStream = new Set<string>();
  private next = 0;

  /** The edge's hook: decides a request's fault by the eventIds in its body. */
  readonly atEdge = (request: ViewerRequest): EdgeFault => {
    if (request.method !== 'POST') return 'pass';
    const ids = eventIds(request.body);
    const fresh = ids.filter((id) => !this.seen.has(id));
    for (const id of fresh) this.seen.add(id);
    if (fresh.length === 0 || request.headers['sec-fetch-mode'] !== 'cors') return 'pass';
    const fault = FAULTS[this.next++ % FAULTS.length]!;
    this.applied[fault] += 1;
    if (fault === 'stream-503') {
      for (const id of fresh) this.refuseAtStream.add(id);
      return 'pass';
    }
    return fault;
  };

  /** The stream writer's wrapper: refuses the records the plan marked, once; records what was stored. */
  readonly stored: string[] = [];
  readonly wrap = (writer: EventStreamWriter): EventStreamWriter => ({
    put: async (records) => {
      const ids = records.map(
        (r) => (JSON.parse(Buffer.from(r.data).toString()) as { eventId: string }).eventId,
      );
      const refused = ids.map((id) => this.refuseAtStream.delete(id));
      const passing = records.filter((_, i) => !refused[i]);
      const written = passing.length > 0 ? await writer.put(passing) : { stored: [], resent: 0 };
      let next = 0;
      const stored = refused.map((was) => (was ? false : written.stored[next++]!));
      ids.forEach((id, i) => stored[i] && this.stored.push(id));
      return {
        ...written,
        stored,
        ...(refused.some(Boolean) ? { error: new Error('refused (injected)') } : {}),
      };
    },
  });
}

function eventIds(body: Buffer): string[] {
  try {
    const parsed = JSON.parse(body.toString()) as unknown;
    return (Array.isArray(parsed) ? parsed : [parsed]).flatMap((e) =>
      typeof (e as { eventId?: unknown })?.eventId === 'string' ? [(e as { eventId: string }).eventId] : [],
    );
  } catch {
    return [];
  }
}

describe('a tracker that does not lose page views, in Chromium, through 503s and dropped connections', () => {
  let stack: LocalStack;
  let browser: Browser;
  let site: string;
  const plan = new FaultPlan();
  const started = Date.now();
  const made = new Map<string, number>();
  const expectView = (path: string) => made.set(`${site}${path}`, (made.get(`${site}${path}`) ?? 0) + 1);
  const total = () => [...made.values()].reduce((a, b) => a + b, 0);
  const cacheDir = mkdtempSync(join(tmpdir(), 'faults-duckdb-'));

  beforeAll(async () => {
    stack = await startLocalStack({
      emulators: inject('emulators'),
      names: isolatedNames('collect-faults'),
      shards: 1,
      runBatchAtStart: false,
      batchIntervalMs: 3_600_000,
      demoSitePort: 0,
      collector: { sites: ['127.0.0.1'], faults: plan.atEdge, wrapWriter: plan.wrap },
    });
    site = stack.demoSiteUrl!;
    browser = await launchChromium({ enforceCors: true, userAgent: CHROME_UA });
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  /** Clicks a link and waits for the address, not for the collector: the next click may leave the page at once. */
  const follow = async (page: Page, selector: string, path: string) => {
    await page.click(selector);
    await page.waitForURL(`${site}${path}`);
    expectView(path);
  };

  it('navigates pages and single-page-app routes, and every page view is counted exactly once', async () => {
    const chrome = await browser.newContext();
    const tab = await chrome.newPage();
    await tab.goto(`${site}/`);
    expectView('/');
    await follow(tab, '#nav-about', '/about');
    await follow(tab, '#nav-pricing', '/pricing');
    await follow(tab, '#nav-app', '/app/');
    await follow(tab, '#spa-reports', '/app/reports');
    await follow(tab, '#spa-settings', '/app/settings');
    await tab.goBack();
    await tab.waitForURL(`${site}/app/reports`);
    expectView('/app/reports');
    await follow(tab, '#nav-home', '/');
    // A tab closed right after it opened: what is still unanswered leaves as a beacon.
    const brief = await chrome.newPage();
    await brief.goto(`${site}/pricing`);
    expectView('/pricing');
    await brief.close({ runBeforeUnload: true });

    // A second visitor, in a context of its own.
    const other = await browser.newContext();
    const second = await other.newPage();
    await second.goto(`${site}/app/`);
    expectView('/app/');
    await follow(second, '#spa-settings', '/app/settings');
    await follow(second, '#spa-reports', '/app/reports');

    // Retries (backoff from 1 s) and beacons deliver every page view at least once.
    await expect.poll(() => new Set(plan.stored).size, { timeout: 60_000, interval: 250 }).toBe(total());
    expect(plan.applied['stream-503']).toBeGreaterThan(0);
    expect(plan.applied['drop-before-origin']).toBeGreaterThan(0);
    expect(plan.applied['drop-after-origin']).toBeGreaterThan(0);
    // Some reached the stream twice (an answer lost after the store): the layers must count them once.
    const onStream = (await streamEvents(stack.clients.kinesis, stack.config.names.stream)).filter((e) =>
      e.url.startsWith(site),
    );
    expect(onStream.length).toBeGreaterThan(total());
    expect(new Set(onStream.map((e) => e.eventId)).size).toBe(total());

    // The batch layer counts an eventId once: land everything, and run it as if two hours had passed, so that
    // H covers every hour of this test and the answer comes from batch views alone.
    await stack.firehose.drain();
    await stack.notifications.sync();
    const batch = createBatchHandler({
      clients: stack.clients,
      config: stack.config,
      engine: createDuckDbEngine({ s3: stack.clients.s3, bucket: stack.config.names.bucket, cacheDir }),
      clock: () => Date.now() + 2 * HOUR_MS,
    });
    expect((await batch()).horizon?.horizonMs).toBeGreaterThan(Date.now());
    const params = new URLSearchParams({
      // The allow-list entry that admitted the page names its site.
      site: '127.0.0.1',
      from: toIso(hourBucket(started)),
      to: toIso(hourBucket(Date.now()) + HOUR_MS),
      granularity: 'hour',
      by: 'url',
      top: '100',
    });
    const answer = (await (
      await fetch(`${stack.apiUrl}/v1/pageviews?${params.toString()}`)
    ).json()) as PageViewsResponse;
    expect(answer.buckets.every((b) => b.source === 'batch')).toBe(true);
    expect(answer.total).toBe(total());
    expect(new Map((answer.breakdown ?? []).map((b) => [b.value, b.total]))).toEqual(made);
  });
});
