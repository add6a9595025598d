import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PageViewsResponse } from '../../shared/api-types.js';
import { HOUR_MS, hourBucket, toIso } from '../../shared/time.js';
import { startLocalStack, type LocalStack } from '../../local/stack.js';
import { launchChromium } from '../support/browser.js';
import { isolatedNames } from './support/stack.js';

/** Visitors' browsers as their User-Agent names them (the Chromium here plays each; the collector reads the header). */
const CHROME_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36';
const FIREFOX_UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';

describe('tracker and collector in Chromium against the local stack', () => {
  let stack: LocalStack;
  let browser: Browser;
  let site: string;
  const started = Date.now();
  /** The page views this test made, by url and by browser token. */
  const made = { byUrl: new Map<string, number>(), byBrowser: new Map<string, number>() };
  const expectView = (path: string, browserToken: string) => {
    const url = `${site}${path}`;
    made.byUrl.set(url, (made.byUrl.get(url) ?? 0) + 1);
    made.byBrowser.set(browserToken, (made.byBrowser.get(browserToken) ?? 0) + 1);
  };
  const total = () => [...made.byUrl.values()].reduce((a, b) => a + b, 0);

  const query = async (by: 'url' | 'browser') => {
    const params = new URLSearchParams({
      // The allow-list entry that admitted the page names its site.
      site: '127.0.0.1',
      from: toIso(hourBucket(started)),
      to: toIso(hourBucket(Date.now()) + HOUR_MS),
      granularity: 'hour',
      by,
      top: '100',
    });
    const response = await fetch(`${stack.apiUrl}/v1/pageviews?${params.toString()}`);
    return (await response.json()) as PageViewsResponse;
  };
  const breakdown = (answer: PageViewsResponse) =>
    new Map((answer.breakdown ?? []).map((b) => [b.value, b.total]));

  /**
   * Does what makes a page view and waits until the collector has answered it, as a person reads a page before
   * the next click. (A page left while its page view is in flight sends it again as a beacon, which the batch
   * layer counts once by its eventId; the fault test, collector-faults-browser, covers that.)
   */
  const viewing = async (page: Page, action: () => Promise<unknown>) => {
    const answered = page.waitForResponse(
      (r) => r.url() === stack.collectorUrl && r.request().method() === 'POST',
    );
    await action();
    await answered;
  };
  /** Clicks a link, waits until the address is the link's and its page view was answered. */
  const follow = (page: Page, selector: string, path: string) =>
    viewing(page, async () => {
      await page.click(selector);
      await page.waitForURL(`${site}${path}`);
    });

  beforeAll(async () => {
    stack = await startLocalStack({
      emulators: inject('emulators'),
      names: isolatedNames('collect-browser'),
      shards: 1,
      runBatchAtStart: false,
      batchIntervalMs: 3_600_000,
      demoSitePort: 0,
      // Only 127.0.0.1: the same demo site opened as http://localhost:… is a disallowed origin.
      collector: { sites: ['127.0.0.1'] },
    });
    site = stack.demoSiteUrl!;
    browser = await launchChromium({ enforceCors: true });
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('counts every page view a visitor makes, pages and single-page-app routes, by url and browser', async () => {
    const chrome: BrowserContext = await browser.newContext({ userAgent: CHROME_UA });
    const tab = await chrome.newPage();
    await viewing(tab, () => tab.goto(`${site}/`));
    expectView('/', 'CH');
    await follow(tab, '#nav-about', '/about');
    expectView('/about', 'CH');
    await follow(tab, '#nav-pricing', '/pricing');
    expectView('/pricing', 'CH');
    await follow(tab, '#nav-app', '/app/');
    expectView('/app/', 'CH');
    await follow(tab, '#spa-reports', '/app/reports');
    expect(await tab.locator('#view').textContent()).toBe('Reports');
    expectView('/app/reports', 'CH');
    await follow(tab, '#spa-settings', '/app/settings');
    expectView('/app/settings', 'CH');
    await viewing(tab, async () => {
      await tab.goBack();
      await tab.waitForURL(`${site}/app/reports`);
    });
    expectView('/app/reports', 'CH');
    await follow(tab, '#spa-overview', '/app/');
    expectView('/app/', 'CH');
    await tab.close({ runBeforeUnload: true });

    const second = await chrome.newPage();
    await viewing(second, () => second.goto(`${site}/pricing`));
    expectView('/pricing', 'CH');
    await second.close();

    const firefox = await browser.newContext({ userAgent: FIREFOX_UA });
    const ff = await firefox.newPage();
    await viewing(ff, () => ff.goto(`${site}/`));
    expectView('/', 'FF');
    await follow(ff, '#nav-about', '/about');
    expectView('/about', 'FF');
    // A request that needs a CORS preflight (application/json) from an allowed origin goes through.
    const preflighted = await ff.evaluate(
      async ({ endpoint, url }) => {
        const response = await fetch(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ url, eventId: 'preflighted-1' }),
        });
        return { status: response.status, body: (await response.json()) as { accepted: unknown[] } };
      },
      { endpoint: stack.collectorUrl, url: `${site}/preflighted` },
    );
    expect(preflighted.status).toBe(202);
    expect(preflighted.body.accepted).toHaveLength(1);
    expectView('/preflighted', 'FF');
    // Contexts stay open: closing one ends the single-process Chromium that the npm package ships.

    await expect
      .poll(async () => (await query('url')).total, { timeout: 30_000, interval: 250 })
      .toBe(total());
    await stack.esm.drain();
    const [byUrl, byBrowser] = [await query('url'), await query('browser')];
    expect(breakdown(byUrl)).toEqual(made.byUrl);
    expect(breakdown(byBrowser)).toEqual(made.byBrowser);
    expect(stack.stats().collector.EventsAccepted).toBe(total());
  });

  it('drops page views from a headless browser as a bot, and counts them', async () => {
    const before = stack.stats().collector.BotEventsDropped ?? 0;
    const headless = await browser.newContext();
    const page = await headless.newPage();
    expect(await page.evaluate(() => navigator.userAgent)).toContain('Headless');
    await page.goto(`${site}/about`);
    await expect
      .poll(() => stack.stats().collector.BotEventsDropped ?? 0, { timeout: 10_000 })
      .toBe(before + 1);
    await page.close();
    expect((await query('url')).total).toBe(total());
  });

  it('refuses a disallowed origin: no CORS answer to its preflight, nothing counted from its pages', async () => {
    const refusedBefore = stack.stats().collector.RequestsRefused ?? 0;
    const other = site.replace('127.0.0.1', 'localhost');
    const context = await browser.newContext({ userAgent: CHROME_UA });
    const page = await context.newPage();
    await page.goto(`${other}/pricing`);
    // The tracker's beacon from this origin is refused by the collector.
    await expect
      .poll(() => stack.stats().collector.RequestsRefused ?? 0, { timeout: 10_000 })
      .toBe(refusedBefore + 1);
    const outcome = await page.evaluate(async (endpoint) => {
      try {
        await fetch(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ url: location.href }),
        });
        return 'answered';
      } catch (error) {
        return (error as Error).name;
      }
    }, stack.collectorUrl);
    expect(outcome).toBe('TypeError');
    await page.close();
    await stack.esm.drain();
    expect((await query('url')).total).toBe(total());
  });
});
