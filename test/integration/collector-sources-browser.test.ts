import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PageViewsResponse } from '../../shared/api-types.js';
import type { Dimension } from '../../shared/event.js';
import { DIRECT_SOURCE } from '../../shared/sources.js';
import { HOUR_MS, hourBucket, toIso } from '../../shared/time.js';
import { startLocalStack, type LocalStack } from '../../local/stack.js';
import { launchChromium } from '../support/browser.js';
import { isolatedNames } from './support/stack.js';

/** A phone's browser, as its User-Agent names it: the collector derives device and OS from the header alone. */
const IPHONE_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1';

describe('sources and devices of page views a browser makes', () => {
  let stack: LocalStack;
  let browser: Browser;
  const started = Date.now();

  beforeAll(async () => {
    stack = await startLocalStack({
      emulators: inject('emulators'),
      names: isolatedNames('sources-browser'),
      shards: 1,
      runBatchAtStart: false,
      batchIntervalMs: 3_600_000,
      demoSitePort: 0,
      collector: { sites: ['127.0.0.1'] },
    });
    browser = await launchChromium({ enforceCors: true });
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const breakdown = async (by: Dimension, site = '127.0.0.1') => {
    const params = new URLSearchParams({
      // The allow-list entry that admitted the page names its site.
      site,
      from: toIso(hourBucket(started)),
      to: toIso(hourBucket(Date.now()) + HOUR_MS),
      granularity: 'hour',
      by,
      top: '100',
    });
    const answer = (await (
      await fetch(`${stack.apiUrl}/v1/pageviews?${params.toString()}`)
    ).json()) as PageViewsResponse;
    return Object.fromEntries((answer.breakdown ?? []).map((b) => [b.value, b.total]));
  };

  it('counts the referrer and campaign of a landing, and a click inside the site as direct', async () => {
    const site = stack.demoSiteUrl!;
    const phone = await browser.newContext({ userAgent: IPHONE_UA });
    const page = await phone.newPage();
    const answered = () =>
      page.waitForResponse((r) => r.url() === stack.collectorUrl && r.request().method() === 'POST');
    // A visitor comes from a Hacker News thread to a campaign link...
    let posted = answered();
    await page.goto(`${site}/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale`, {
      referer: 'https://news.ycombinator.com/item?id=42',
    });
    await posted;
    // ...then follows a link of the site: no referrer from outside, no campaign in its url.
    posted = answered();
    await page.click('#nav-about');
    await page.waitForURL(`${site}/about`);
    await posted;

    await expect.poll(async () => (await breakdown('device')).mobile, { timeout: 30_000 }).toBe(2);
    await stack.esm.drain();
    expect(await breakdown('source')).toEqual({ newsletter: 1, [DIRECT_SOURCE]: 1 });
    expect(await breakdown('referrer')).toEqual({ 'news.ycombinator.com': 1, '(none)': 1 });
    expect(await breakdown('utm_campaign')).toEqual({ spring_sale: 1, '(none)': 1 });
    expect(await breakdown('utm_medium')).toEqual({ email: 1, '(none)': 1 });
    expect(await breakdown('os')).toEqual({ iOS: 2 });
    // The campaign's parameters left the url: one url per page.
    expect(Object.keys(await breakdown('url')).sort()).toEqual([`${site}/about`, `${site}/pricing`]);
    // The stack's other site, the default one, counted none of them.
    expect(await breakdown('device', 'default')).toEqual({});
  });
});
