import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CollectorMetric, CollectResult } from '../../shared/collection/collector.js';
import { ORIGIN_VERIFY_HEADER } from '../../shared/collection/edge.js';
import type { PageView } from '../../shared/event.js';
import { startLocalCollector, type LocalCollector } from '../../local/collector.js';
import { testStack, type TestStack } from './support/stack.js';
import { streamEvents } from './support/stream.js';

/**
 * The collector as a caller on the internet meets it: behind the CloudFront stand-in (the WAF rate rule, the
 * origin request policy, CloudFront's viewer headers and the origin secret), with the origin reachable directly.
 * Each client speaks from a loopback address of its own (127.0.0.x all reach lo on Linux), so the edge sees
 * distinct viewers.
 */

const SITE = 'http://shop.example';
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
/** The stand-in's geo database. */
const COUNTRIES: Record<string, string> = { '127.0.0.2': 'DE', '127.0.0.3': 'FR', '127.0.0.4': 'JP' };
const RATE_RULE = { limit: 20, windowSeconds: 60 };

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One HTTP request from a chosen local address; a connection the edge drops rejects. */
function send(
  url: string,
  options: { from: string; method?: string; headers?: Record<string, string>; body?: string },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: options.method ?? 'POST',
        localAddress: options.from,
        headers: options.headers ?? {},
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('the collector behind its CloudFront stand-in', () => {
  let stack: TestStack;
  let collector: LocalCollector;
  const counts: Partial<Record<CollectorMetric, number>> = {};
  let tag = 0;
  /** A path of its own for each test, to find its events on the shared stream. */
  const page = (path = '') => `${SITE}/e${(tag += 1)}${path}`;
  const stored = async (prefix: string): Promise<PageView[]> =>
    (await streamEvents(stack.clients.kinesis, stack.names.stream)).filter((e) => e.url.startsWith(prefix));
  /** A tracker's beacon from `from`, through the edge. */
  const beacon = (from: string, body: unknown, headers: Record<string, string> = {}) =>
    send(collector.collectorUrl, {
      from,
      headers: {
        origin: SITE,
        'content-type': 'text/plain;charset=UTF-8',
        'user-agent': FIREFOX,
        ...headers,
      },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    stack = await testStack('collector-edge', { shards: 1 });
    collector = await startLocalCollector({
      kinesis: stack.clients.kinesis,
      streamName: stack.names.stream,
      sites: ['shop.example', 'blog.example'],
      keepParameters: { 'shop.example': ['id'] },
      rateRule: RATE_RULE,
      countryOf: (ip) => COUNTRIES[ip],
      observer: { count: (metric, value) => (counts[metric] = (counts[metric] ?? 0) + value) },
    });
  });
  afterAll(async () => {
    await collector?.close();
    stack?.destroy();
  });

  it('refuses a direct call to the origin, forged CloudFront headers or not, and stores nothing', async () => {
    const url = page();
    const forged = {
      origin: SITE,
      'content-type': 'text/plain',
      'user-agent': FIREFOX,
      'cloudfront-viewer-country': 'KP',
      'cloudfront-viewer-address': '198.51.100.1:443',
    };
    for (const headers of [forged, { ...forged, [ORIGIN_VERIFY_HEADER]: 'a guess' }]) {
      const answer = await send(`${collector.originUrl}/v1/events`, {
        from: '127.0.0.2',
        headers,
        body: JSON.stringify({ url }),
      });
      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.body).error.code).toBe('origin_unverified');
    }
    const script = await send(`${collector.originUrl}${collector.tracker.path}`, {
      from: '127.0.0.2',
      method: 'GET',
    });
    expect(script.status).toBe(403);
    expect(await stored(url)).toEqual([]);
    expect(counts.OriginUnverified).toBe(3);
    // Through the edge, the same request is taken.
    expect((await beacon('127.0.0.2', { url })).status).toBe(202);
    expect(await stored(url)).toHaveLength(1);
  });

  it("ignores forged country and address headers: country and visitor come from the viewer's connection", async () => {
    const url = page();
    const plain = await beacon('127.0.0.2', { url, eventId: 'plain' });
    const forging = await beacon(
      '127.0.0.2',
      { url, eventId: 'forging' },
      {
        'cloudfront-viewer-country': 'KP',
        'cloudfront-viewer-address': '198.51.100.1:443',
        [ORIGIN_VERIFY_HEADER]: 'a guess',
      },
    );
    const elsewhere = await beacon('127.0.0.3', { url, eventId: 'elsewhere' });
    expect([plain.status, forging.status, elsewhere.status]).toEqual([202, 202, 202]);
    const byId = new Map((await stored(url)).map((e) => [e.eventId, e]));
    expect(byId.get('forging')!.country).toBe('DE');
    expect(byId.get('forging')!.userId).toBe(byId.get('plain')!.userId);
    expect(byId.get('elsewhere')).toMatchObject({ country: 'FR' });
    expect(byId.get('elsewhere')!.userId).not.toBe(byId.get('plain')!.userId);
  });

  it('ignores userId, browser, country and created in the body; keeps status as the claim it is', async () => {
    const url = page();
    const answer = await beacon('127.0.0.4', {
      url,
      eventId: 'claims',
      userId: 'victim@example.com',
      browser: 'IE',
      country: 'KP',
      created: Date.UTC(2020, 0, 1),
      status: 500,
    });
    expect(answer.status).toBe(202);
    const [event] = await stored(url);
    expect(event).toMatchObject({ eventId: 'claims', browser: 'FF', country: 'JP', status: 500 });
    expect(event!.userId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(event!.created).toBeGreaterThan(Date.now() - 60_000);
    expect(JSON.stringify(event)).not.toContain('victim');
  });

  it('refuses a wrong site, a request without Origin or Referer, and a url of another host, naming the rule', async () => {
    const url = page();
    const refusedBefore = counts.SiteRefused ?? 0;
    const cases: [Record<string, string>, unknown, string][] = [
      [{ origin: 'https://evil.example' }, { url }, 'origin_not_allowed'],
      [{ origin: 'null' }, { url }, 'origin_required'],
      [{ origin: SITE }, [{ url }, { url: 'http://blog.example/pwned' }], 'url_host_mismatch'],
      // The same host on another scheme is another site, as the browser's Origin says.
      [{ origin: 'https://shop.example' }, { url }, 'url_host_mismatch'],
    ];
    for (const [headers, body, rule] of cases) {
      const answer = await send(collector.collectorUrl, {
        from: '127.0.0.2',
        headers: { 'content-type': 'text/plain', 'user-agent': FIREFOX, ...headers },
        body: JSON.stringify(body),
      });
      expect(answer.status, rule).toBe(403);
      expect(JSON.parse(answer.body).error.code).toBe(rule);
      expect(answer.headers['access-control-allow-origin']).toBeUndefined();
    }
    const noOrigin = await send(collector.collectorUrl, {
      from: '127.0.0.2',
      headers: { 'content-type': 'text/plain', 'user-agent': FIREFOX },
      body: JSON.stringify({ url }),
    });
    expect(JSON.parse(noOrigin.body).error.code).toBe('origin_required');
    // A beacon that carries only a Referer of the site is taken.
    const referred = await send(collector.collectorUrl, {
      from: '127.0.0.2',
      headers: { referer: `${SITE}/page`, 'content-type': 'text/plain', 'user-agent': FIREFOX },
      body: JSON.stringify({ url: `${url}/r` }),
    });
    expect(referred.status).toBe(202);
    expect((await stored(url)).map((e) => e.url)).toEqual([`${url}/r`]);
    expect((counts.SiteRefused ?? 0) - refusedBefore).toBe(cases.length + 1);
  });

  it('normalizes tracking parameters away, keeps the keep-list, and counts what it removed', async () => {
    const url = page();
    const removedBefore = counts.UrlParametersRemoved ?? 0;
    const answer = await beacon('127.0.0.3', [
      { url: `${url}?fbclid=IwAR3x&id=42&gclid=Cj0&utm_source=news&utm_medium=mail#reviews` },
      { url: `${url}?gclid=other&id=42` },
      { url: `${url.replace('shop.example', 'SHOP.Example')}?session=abc123` },
    ]);
    expect(answer.status).toBe(202);
    expect((await stored(url)).map((e) => e.url).sort()).toEqual([`${url}`, `${url}?id=42`, `${url}?id=42`]);
    expect((counts.UrlParametersRemoved ?? 0) - removedBefore).toBe(4 + 1 + 1);
  });

  it("limits one client's flood with 429s at the edge while a second client is served", async () => {
    const url = page();
    const flood = await Promise.all(
      Array.from({ length: RATE_RULE.limit * 2 }, (_, i) =>
        beacon('127.0.0.5', { url, eventId: `flood-${i}` }),
      ),
    );
    const statuses = flood.map((a) => a.status);
    expect(statuses.filter((s) => s === 429)).toHaveLength(RATE_RULE.limit);
    expect(statuses.filter((s) => s === 202)).toHaveLength(RATE_RULE.limit);
    expect(flood.find((a) => a.status === 429)!.headers['retry-after']).toBe('60');
    const other = await beacon('127.0.0.6', { url, eventId: 'served' });
    expect(other.status).toBe(202);
    const events = await stored(url);
    expect(events).toHaveLength(RATE_RULE.limit + 1);
    expect(events.map((e) => e.eventId)).toContain('served');
    expect(collector.edge.stats.rateLimited).toBeGreaterThanOrEqual(RATE_RULE.limit);
  });

  it('adds HSTS and nosniff to what the edge answers, and serves the tracker with its SRI-pinned bytes', async () => {
    const script = await send(collector.trackerUrl, { from: '127.0.0.2', method: 'GET' });
    expect(script.status).toBe(200);
    expect(script.body).toBe(collector.tracker.script);
    const answer = await beacon('127.0.0.2', { url: page() });
    for (const response of [script, answer]) {
      expect(response.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
    }
    expect((JSON.parse(answer.body) as CollectResult).accepted).toHaveLength(1);
  });
});
