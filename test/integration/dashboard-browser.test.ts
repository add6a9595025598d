import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { generatedSites, PageViewGenerator } from '../../traffic/generator.js';
import type { PageView } from '../../shared/event.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { HOUR_MS, hourBucket } from '../../shared/time.js';
import { buildDashboard } from '../../dashboard/build.js';
import { startLocalStack, type LocalStack } from '../../local/stack.js';
import { isolatedNames } from './support/stack.js';
import { launchChromium } from '../support/browser.js';

const ARTIFACTS = join(process.cwd(), 'test-artifacts');

describe('dashboard in Chromium against the local stack', () => {
  let stack: LocalStack;
  let browser: Browser;
  let page: Page;
  /** Two sites share the traffic; the default one has none. */
  const SITES = generatedSites(2);
  let events: PageView[] = [];

  beforeAll(async () => {
    stack = await startLocalStack({
      emulators: inject('emulators'),
      names: isolatedNames('dashboard'),
      shards: 1,
      staticDir: await buildDashboard(),
      runBatchAtStart: false,
      batchIntervalMs: 3_600_000,
      settings: { sites: SITES },
    });
    // Three hours of traffic up to now, so that a batch run has hours to publish and speed has the rest.
    const now = Date.now();
    const from = hourBucket(now) - 3 * HOUR_MS;
    const records = [
      ...new PageViewGenerator({
        seed: 8,
        startMs: from,
        rate: 600 / ((now - from) / 1000),
        sites: SITES,
      }).take(600),
    ];
    events = records.map((r) => r.event!);
    await putRecordsReliably(stack.clients.kinesis, stack.config.names.stream, records);
    await stack.esm.drain();
    await stack.firehose.drain();
    await stack.scheduler.runNow();
    // Playwright gives each launch a fresh, empty profile directory.
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const chartData = () => page.locator('.chart').first();

  it('loads, charts non-zero traffic, marks the horizon, and follows the range and breakdown controls', async () => {
    await page.goto(`${stack.apiUrl}/`);
    await expect
      .poll(async () => Number(await chartData().getAttribute('data-total')), { timeout: 20_000 })
      .toBeGreaterThan(0);
    const dayQuery = await chartData().getAttribute('data-query');
    expect(dayQuery).toMatch(/\/hour\/url$/);
    expect(await page.locator('#series-table tbody tr').count()).toBe(24);

    const horizon = await page.locator('#horizon-marker').getAttribute('data-horizon');
    expect(horizon).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:00:00\.000Z$/);
    await expect.poll(() => page.locator('#horizon-marker').textContent()).toContain('Horizon H:');
    const sources = await page.locator('#series-table tbody td:nth-child(5)').allTextContents();
    expect(sources).toContain('batch');
    expect(sources).toContain('speed');
    // Visitors beside page views: never more visitors than page views in a bucket, and some in range.
    const rows = await page
      .locator('#series-table tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
      );
    const number = (text: string) => Number(text.replace(/,/g, ''));
    for (const [, views, visitors] of rows) expect(number(visitors!)).toBeLessThanOrEqual(number(views!));
    expect(Number(await chartData().getAttribute('data-visitors'))).toBeGreaterThan(0);
    const rates = await page.locator('#breakdown-table tbody td:nth-child(4)').allTextContents();
    expect(rates.filter((r) => /^\d+\.\d%$/.test(r)).length).toBeGreaterThan(0);
    // The live panel: the last five minutes from the speed layer (this traffic reaches up to now).
    await expect.poll(() => page.locator('#live-pageviews').textContent()).toMatch(/^\d[\d,]*$/);
    expect(await page.locator('#live-table tbody tr').count()).toBeGreaterThan(0);

    await page.selectOption('#range', 'hour');
    await expect
      .poll(() => chartData().getAttribute('data-query'), { timeout: 20_000 })
      .toMatch(/\/minute\/url$/);
    expect(await page.locator('#series-table tbody tr').count()).toBe(60);
    expect(Number(await chartData().getAttribute('data-total'))).toBeGreaterThan(0);

    await page.selectOption('#by', 'browser');
    await expect
      .poll(() => page.locator('#breakdown-title').textContent(), { timeout: 20_000 })
      .toBe('Breakdown by browser');
    const browsers = await page.locator('#breakdown-table tbody td:first-child').allTextContents();
    expect(browsers.length).toBeGreaterThan(0);
    expect(browsers.every((b) => ['CH', 'SF', 'FF', 'ED', 'OP'].includes(b))).toBe(true);

    await page.selectOption('#range', 'day');
    await page.selectOption('#by', 'country');
    await expect
      .poll(() => chartData().getAttribute('data-query'), { timeout: 20_000 })
      .toMatch(/\/hour\/country$/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  });

  it('offers a site selector when there are several sites, and counts only the chosen site', async () => {
    await page.goto(`${stack.apiUrl}/`);
    await expect.poll(() => page.locator('#site-control').isVisible(), { timeout: 20_000 }).toBe(true);
    expect(await page.locator('#site option').allTextContents()).toEqual(['default', ...SITES]);
    // It opens on the first site with page views.
    expect(await page.locator('#site').inputValue()).toBe(SITES[0]);
    for (const site of [SITES[1]!, SITES[0]!]) {
      await page.selectOption('#site', site);
      const own = events.filter((e) => e.site === site).length;
      expect(own).toBeGreaterThan(0);
      await expect
        .poll(async () => Number(await chartData().getAttribute('data-total')), { timeout: 20_000 })
        .toBe(own);
    }
  });

  it('is operable from the keyboard', async () => {
    await page.goto(`${stack.apiUrl}/`);
    await page.locator('#range').focus();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('granularity');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('by');
    for (const id of ['site', 'range', 'granularity', 'by', 'refresh']) {
      expect(await page.locator(`label:has(#${id})`).count(), `#${id} has a label`).toBe(1);
    }
  });
});
