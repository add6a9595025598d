import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LiveResponse, PageViewsResponse } from '../../shared/api-types.js';
import { PageViewGenerator } from '../../traffic/generator.js';
import { putRecordsReliably } from '../../shared/kinesis-producer.js';
import { HOUR_MS, hourBucket } from '../../shared/time.js';
import { buildDashboard } from '../../dashboard/build.js';
import { startLocalStack, type LocalStack } from '../../local/stack.js';
import { isolatedNames } from './support/stack.js';
import { launchChromium } from '../support/browser.js';

/**
 * The dashboard's filters (docs/filters.md) in Chromium: a click on a country in the breakdown filters every
 * panel, each equal to the API's filtered answer; the chip removes the filter; the page's URL carries it, so the
 * shared URL restores it.
 */
describe('dashboard filters in Chromium against the local stack', () => {
  let stack: LocalStack;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    stack = await startLocalStack({
      emulators: inject('emulators'),
      names: isolatedNames('dashfilters'),
      shards: 1,
      staticDir: await buildDashboard(),
      runBatchAtStart: false,
      batchIntervalMs: 3_600_000,
    });
    const now = Date.now();
    const from = hourBucket(now) - 3 * HOUR_MS;
    const records = [
      ...new PageViewGenerator({ seed: 11, startMs: from, rate: 500 / ((now - from) / 1000) }).take(500),
    ];
    await putRecordsReliably(stack.clients.kinesis, stack.config.names.stream, records);
    await stack.esm.drain();
    await stack.firehose.drain();
    await stack.scheduler.runNow();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const chart = () => page.locator('.chart').first();
  /** The API's answer to the query the page made last (the chart carries it). */
  const apiAnswer = async () => {
    const request = (await chart().getAttribute('data-request'))!;
    return (await (await fetch(`${stack.apiUrl}/v1/pageviews?${request}`)).json()) as PageViewsResponse;
  };
  const apiLive = async (filters: readonly string[]) => {
    const query = new URLSearchParams();
    for (const f of filters) query.append('filter', f);
    return (await (await fetch(`${stack.apiUrl}/v1/live?${query}`)).json()) as LiveResponse;
  };
  const tableRows = (id: string) =>
    page
      .locator(`#${id} tbody tr`)
      .evaluateAll((trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
      );
  const number = (text: string) => Number(text.replace(/,/g, ''));

  it('filters every panel by a clicked country, removes the filter with its chip, and restores it from the URL', async () => {
    await page.goto(`${stack.apiUrl}/`);
    await page.selectOption('#by', 'country');
    await expect
      .poll(() => chart().getAttribute('data-query'), { timeout: 20_000 })
      .toMatch(/\/hour\/country$/);
    const unfiltered = Number(await chart().getAttribute('data-total'));
    expect(unfiltered).toBeGreaterThan(0);

    const first = page.locator('#breakdown-table tbody button.filter-value').first();
    const country = (await first.textContent())!;
    await first.click();
    const filter = `country:${country}`;
    await expect.poll(() => chart().getAttribute('data-filters'), { timeout: 20_000 }).toBe(filter);
    expect(new URL(page.url()).searchParams.getAll('filter')).toEqual([filter]);
    await expect.poll(() => page.locator('#filters .chip').count()).toBe(1);
    expect(await page.locator('#filters .chip span').textContent()).toBe(filter);

    // Every panel shows only that country's page views, as the API answers them.
    const answer = await apiAnswer();
    expect(answer.query.filters).toEqual([filter]);
    const total = Number(await chart().getAttribute('data-total'));
    expect(total).toBe(answer.total);
    expect(total).toBeLessThan(unfiltered);
    const series = await tableRows('series-table');
    expect(series.map(([, views]) => number(views!))).toEqual(answer.buckets.map((b) => b.count));
    const breakdown = await tableRows('breakdown-table');
    expect(breakdown.map(([value, views]) => [value, number(views!)])).toEqual([[country, answer.total]]);
    // The live panel refreshes on its own; on a slow endpoint (moto) one refresh and API call take over a second,
    // vitest's default for a poll.
    await expect
      .poll(
        async () => {
          const live = await apiLive([filter]);
          return number((await page.locator('#live-pageviews').textContent()) ?? '') === live.pageviews;
        },
        { timeout: 30_000 },
      )
      .toBe(true);
    const livePages = await tableRows('live-table');
    const live = await apiLive([filter]);
    expect(livePages.length).toBe(live.topPages.length);

    // The chip's button removes the filter, from the panels and the URL.
    await page.getByRole('button', { name: `Remove filter ${filter}` }).click();
    await expect.poll(() => chart().getAttribute('data-filters'), { timeout: 20_000 }).toBe('');
    await expect.poll(async () => Number(await chart().getAttribute('data-total'))).toBe(unfiltered);
    expect(new URL(page.url()).searchParams.getAll('filter')).toEqual([]);
    await expect.poll(() => page.locator('#filters .chip').count()).toBe(0);

    // The shared URL restores the filter.
    const shared = new URL(`${stack.apiUrl}/`);
    shared.searchParams.append('filter', filter);
    await page.goto(shared.toString());
    await expect.poll(() => chart().getAttribute('data-filters'), { timeout: 20_000 }).toBe(filter);
    expect(Number(await chart().getAttribute('data-total'))).toBe(total);
    await expect.poll(() => page.locator('#filters .chip').count()).toBe(1);
  });

  it('keeps the filter buttons and chips operable from the keyboard', async () => {
    await page.goto(`${stack.apiUrl}/`);
    await page.selectOption('#by', 'browser');
    await expect
      .poll(() => page.locator('#breakdown-title').textContent(), { timeout: 20_000 })
      .toBe('Breakdown by browser');
    const value = page.locator('#breakdown-table tbody button.filter-value').first();
    await expect.poll(() => value.isVisible(), { timeout: 20_000 }).toBe(true);
    const browserName = (await value.textContent())!;
    await value.focus();
    await page.keyboard.press('Enter');
    const chip = page.getByRole('button', { name: `Remove filter browser:${browserName}` });
    await expect.poll(() => chip.isVisible(), { timeout: 20_000 }).toBe(true);
    await chip.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#filters .chip').count()).toBe(0);
  });
});
