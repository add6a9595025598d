import { describe, expect, it } from 'vitest';
import { viewerIp, type CollectRequest } from '../../shared/collection/collector.js';
import {
  browserToken,
  EVENT_AGE,
  eventTime,
  isBot,
  OTHER_BROWSER,
  VisitorIds,
} from '../../shared/collection/enrich.js';
import { requestSite, SiteAllowList, SiteListError } from '../../shared/collection/sites.js';
import { buildTracker } from '../../shared/collection/tracker.js';
import { DAY_MS } from '../../shared/time.js';

const UA = {
  chrome:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36',
  safari:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
  firefox: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  edge: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0',
  opera:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0',
  samsung:
    'Mozilla/5.0 (Linux; Android 13; SM-S901B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36',
  headless:
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/140.0.0.0 Safari/537.36',
  googlebot: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
};

describe('browser from the User-Agent', () => {
  it.each([
    [UA.chrome, 'CH'],
    [UA.safari, 'SF'],
    [UA.firefox, 'FF'],
    [UA.edge, 'ED'],
    [UA.opera, 'OP'],
    [UA.samsung, 'SI'],
    ['', OTHER_BROWSER],
    ['something unheard of/1.0', OTHER_BROWSER],
  ])('maps %s to %s', (ua, token) => {
    expect(browserToken(ua)).toBe(token);
  });

  it('knows bots, headless browsers and empty User-Agents, and not the browsers people use', () => {
    expect([UA.googlebot, UA.headless, ''].map(isBot)).toEqual([true, true, true]);
    expect([UA.chrome, UA.safari, UA.firefox, UA.edge].map(isBot)).toEqual([false, false, false, false]);
  });
});

describe('event time: the receive time, less the age a tracker reports, within a window', () => {
  const now = Date.UTC(2026, 10, 25, 12, 0, 0);
  it('is the receive time when the tracker says nothing, or nothing usable', () => {
    for (const age of [undefined, 0, -5000, 'yesterday', Number.NaN, Number.POSITIVE_INFINITY, { ms: 5 }]) {
      expect(eventTime(age, now)).toEqual({ created: now, clamped: false });
    }
  });
  it("places a retried beacon at its first attempt's time, to the millisecond, up to the window", () => {
    expect(eventTime(1234.9, now)).toEqual({ created: now - 1234, clamped: false });
    expect(eventTime(EVENT_AGE.maxMs, now)).toEqual({ created: now - EVENT_AGE.maxMs, clamped: false });
  });
  it('cuts an age beyond the window to the window, so no one can write into hours long computed', () => {
    expect(eventTime(EVENT_AGE.maxMs + 1, now)).toEqual({ created: now - EVENT_AGE.maxMs, clamped: true });
    expect(eventTime(30 * 24 * 3600_000, now)).toEqual({ created: now - EVENT_AGE.maxMs, clamped: true });
  });
});

describe('cookieless visitor ids', () => {
  const ids = new VisitorIds('a secret key of some length');
  const noon = Date.UTC(2026, 10, 25, 12);
  const id = (site = 'shop.example', ip = '203.0.113.7', ua = UA.firefox, at = noon) =>
    ids.visitorId(site, ip, ua, at);

  it('gives one browser on one site the same id all day (UTC), as 22 printable characters', () => {
    expect(id()).toBe(id(undefined, undefined, undefined, Date.UTC(2026, 10, 25, 0, 0, 0)));
    expect(id()).toBe(id(undefined, undefined, undefined, Date.UTC(2026, 10, 25, 23, 59, 59, 999)));
    expect(id()).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('changes with the day, the site, the address, the User-Agent and the key', () => {
    const others = [
      id(undefined, undefined, undefined, noon + DAY_MS),
      id('blog.example'),
      id(undefined, '203.0.113.8'),
      id(undefined, undefined, UA.chrome),
      new VisitorIds('another secret key of length').visitorId(
        'shop.example',
        '203.0.113.7',
        UA.firefox,
        noon,
      ),
    ];
    expect(new Set([id(), ...others]).size).toBe(others.length + 1);
  });

  it('does not hold the address', () => {
    expect(id()).not.toContain('203');
    expect(() => new VisitorIds('short')).toThrow(RangeError);
  });

  it('derives the partition key from the visitor and the eventId, so a chosen eventId cannot choose a shard', () => {
    const key = (eventId: string, visitor = id()) => ids.partitionKey(visitor, eventId, noon);
    expect(key('pv-1')).toBe(key('pv-1'));
    expect(key('pv-1')).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(new Set([key('pv-1'), key('pv-2'), key('pv-1', id('blog.example'))]).size).toBe(3);
    expect(key('pv-1')).not.toContain('pv-1');
  });
});

describe('viewer address', () => {
  const request = (headers: Record<string, string>): CollectRequest => ({
    method: 'POST',
    path: '/v1/events',
    headers,
    sourceIp: '192.0.2.1',
  });
  it('takes the viewer address CloudFront adds, IPv4 or IPv6, without the port', () => {
    expect(viewerIp(request({ 'cloudfront-viewer-address': '203.0.113.7:46532' }))).toBe('203.0.113.7');
    expect(viewerIp(request({ 'cloudfront-viewer-address': '2001:db8::1:46532' }))).toBe('2001:db8::1');
  });
  it('falls back to the connecting address', () => {
    expect(viewerIp(request({}))).toBe('192.0.2.1');
  });
});

describe('site allow-list', () => {
  const sites = new SiteAllowList(['shop.example', '*.blog.example', '127.0.0.1']);
  it('allows listed hosts and subdomains of a wildcard, whatever the scheme or port of the origin', () => {
    expect(sites.allowsHost('shop.example')).toBe(true);
    expect(sites.allowsHost('SHOP.example')).toBe(true);
    expect(sites.allowsHost('www.blog.example')).toBe(true);
    expect(sites.allowsHost('a.b.blog.example')).toBe(true);
  });
  it('refuses other hosts, look-alikes, the bare wildcard domain and opaque origins', () => {
    expect(sites.allowsHost('blog.example')).toBe(false);
    expect(sites.allowsHost('shop.example.evil')).toBe(false);
    expect(sites.allowsHost('evilblog.example')).toBe(false);
  });
  it('rejects entries that are not host names', () => {
    expect(() => new SiteAllowList(['https://shop.example'])).toThrow(SiteListError);
    expect(() => SiteAllowList.parse('shop.example, shop.example:443')).toThrow(/shop.example:443/);
  });
});

describe('the site a browser request comes from', () => {
  const sites = new SiteAllowList(['shop.example', '*.blog.example', '127.0.0.1']);
  it('is its Origin, scheme, host and port, when the site is allowed', () => {
    expect(requestSite({ origin: 'http://127.0.0.1:3001' }, sites)).toEqual({
      ok: true,
      origin: 'http://127.0.0.1:3001',
      host: '127.0.0.1',
      site: '127.0.0.1',
    });
    expect(
      requestSite({ origin: 'https://a.b.blog.example', referer: 'https://x.example/' }, sites),
    ).toMatchObject({
      ok: true,
      origin: 'https://a.b.blog.example',
      // A `*.domain` entry's site is the domain.
      site: 'blog.example',
    });
  });

  it("names the site of the entry that admitted it: `host=site`, else the host's own entry, else the longest *.domain", () => {
    const named = new SiteAllowList([
      'shop.example',
      'www.shop.example=shop.example',
      '*.example',
      '*.b.example',
    ]);
    const siteOf = (origin: string) => (requestSite({ origin }, named) as { site?: string }).site;
    expect(siteOf('https://www.shop.example')).toBe('shop.example');
    expect(siteOf('https://shop.example')).toBe('shop.example');
    expect(siteOf('https://a.b.example')).toBe('b.example');
    expect(siteOf('https://other.example')).toBe('example');
    expect(named.siteIds).toEqual(['shop.example', 'example', 'b.example']);
    expect(() => new SiteAllowList(['shop.example=Shop'])).toThrow(/not a site id/);
  });
  it("is a beacon's Referer when it carries no Origin, or only Origin: null", () => {
    for (const headers of [
      { referer: 'https://shop.example/cart?x=1' },
      { origin: 'null', referer: 'https://shop.example/' },
    ]) {
      expect(requestSite(headers, sites)).toEqual({
        ok: true,
        origin: 'https://shop.example',
        host: 'shop.example',
        site: 'shop.example',
      });
    }
  });
  it('names the rule a request breaks: no site named, or a site not on the list', () => {
    expect(requestSite({}, sites)).toMatchObject({ ok: false, rule: 'origin_required' });
    expect(requestSite({ origin: 'null' }, sites)).toMatchObject({ ok: false, rule: 'origin_required' });
    for (const origin of [
      'https://evil.example',
      'https://blog.example',
      'file:///tmp/x.html',
      'not a url',
    ]) {
      expect(requestSite({ origin }, sites)).toMatchObject({ ok: false, rule: 'origin_not_allowed' });
    }
    expect(requestSite({ referer: 'https://shop.example.evil/' }, sites)).toMatchObject({
      ok: false,
      rule: 'origin_not_allowed',
    });
  });
});

describe('keep-lists: the query parameters a site keeps', () => {
  const sites = new SiteAllowList(['shop.example', '*.blog.example'], {
    'shop.example': ['id', 'page'],
    '*.blog.example': ['p'],
  });
  it('belong to the entries that match a host', () => {
    expect([...sites.keepFor('shop.example')]).toEqual(['id', 'page']);
    expect([...sites.keepFor('www.blog.example')]).toEqual(['p']);
    expect(sites.keepFor('elsewhere.example').size).toBe(0);
  });
  it('must name listed sites and plain parameter names', () => {
    expect(() => new SiteAllowList(['shop.example'], { 'other.example': ['id'] })).toThrow(/other.example/);
    expect(() => new SiteAllowList(['shop.example'], { 'shop.example': ['a=b'] })).toThrow(/a=b/);
  });
});

describe('tracker script', () => {
  it('is one minified classic script under 1 KB gzipped', () => {
    const tracker = buildTracker();
    expect(tracker.gzipBytes).toBeLessThan(1024);
    expect(tracker.script).not.toMatch(/\bimport\b|\bexport\b/);
    expect(tracker.script).toContain('sendBeacon');
    expect(tracker.script).toContain('keepalive');
  });
});
