import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { PutRecordsCommand, type PutRecordsCommandOutput } from '@aws-sdk/client-kinesis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  COLLECTOR_LIMITS,
  createCollector,
  EVENTS_PATH,
  TRACKER_PATH,
  type CollectorMetric,
  type CollectRequest,
  type CollectResult,
} from '../../shared/collection/collector.js';
import { ORIGIN_VERIFY_HEADER } from '../../shared/collection/edge.js';
import { createCollectHandler } from '../../lambdas/collect/handler.js';
import { fixedOriginSecret } from '../../shared/collection/origin-verify.js';
import { SiteAllowList } from '../../shared/collection/sites.js';
import { putRecordsWriter } from '../../shared/collection/stream-writer.js';
import { buildTracker } from '../../shared/collection/tracker.js';
import { trackerAsset } from '../../shared/collection/tracker-asset.js';
import { startHttpApi, type RunningHttpApi } from '../../local/http-server.js';
import { testStack, type TestStack } from './support/stack.js';
import { streamEvents as streamEventsOf } from './support/stream.js';

const SITE = 'http://shop.example';
const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
const VIEWER_IP = '203.0.113.7';
/** What CloudFront adds to every request it sends: these tests play CloudFront in front of the collector. */
const ORIGIN_SECRET = 'the origin secret of these tests';

/** Every record on the test's stream, decoded. */
const streamEvents = (stack: TestStack) => streamEventsOf(stack.clients.kinesis, stack.names.stream);

/**
 * The real client with PutRecords throttled: `failing(call, entries)` names the entries of a call that the
 * stream refuses, as Kinesis does per record (ProvisionedThroughputExceededException); the rest are sent for
 * real. `throwOn(call)` makes a whole call fail instead. Every call's entries are recorded.
 */
function throttled(
  real: KinesisClient,
  failing: (call: number, entries: number) => readonly number[],
  throwOn: (call: number) => boolean = () => false,
) {
  const calls: string[][] = [];
  const client = Object.create(real) as KinesisClient;
  client.send = (async (command: unknown) => {
    if (!(command instanceof PutRecordsCommand)) return real.send(command as never);
    const entries = command.input.Records ?? [];
    const call = calls.push(entries.map((e) => new TextDecoder().decode(e.Data))) - 1;
    if (throwOn(call)) {
      throw Object.assign(new Error('Rate exceeded for stream (injected)'), {
        name: 'ProvisionedThroughputExceededException',
      });
    }
    const refused = new Set(failing(call, entries.length));
    const passed = entries.filter((_, i) => !refused.has(i));
    const sent: Pick<PutRecordsCommandOutput, 'Records' | 'FailedRecordCount'> = passed.length
      ? await real.send(new PutRecordsCommand({ ...command.input, Records: passed }))
      : { Records: [] };
    const results = [...(sent.Records ?? [])];
    const output: PutRecordsCommandOutput = {
      $metadata: {},
      FailedRecordCount: refused.size + (sent.FailedRecordCount ?? 0),
      Records: entries.map((_, i) =>
        refused.has(i)
          ? {
              ErrorCode: 'ProvisionedThroughputExceededException',
              ErrorMessage: 'Rate exceeded for shard (injected)',
            }
          : results.shift()!,
      ),
    };
    return output;
  }) as KinesisClient['send'];
  return { client, calls };
}

describe('the collector on a real stream', () => {
  let stack: TestStack;
  const counts: Partial<Record<CollectorMetric, number>> = {};
  const sites = new SiteAllowList(['shop.example', '*.blog.example']);
  const collectorOn = (kinesis: KinesisClient, clock?: () => number) =>
    createCollector({
      writer: putRecordsWriter(kinesis, stack.names.stream, { maxAttempts: 3, baseDelayMs: 1 }),
      config: {
        sites,
        visitorKey: 'a test key that is long enough',
        origin: fixedOriginSecret(ORIGIN_SECRET),
        trackerScript: buildTracker().script,
      },
      observer: { count: (metric, value) => (counts[metric] = (counts[metric] ?? 0) + value) },
      ...(clock ? { clock } : {}),
    });
  let collect: ReturnType<typeof createCollector>;

  const post = (body: unknown, headers: Record<string, string> = {}): CollectRequest => ({
    method: 'POST',
    path: EVENTS_PATH,
    headers: {
      'content-type': 'application/json',
      origin: SITE,
      'user-agent': FIREFOX,
      'cloudfront-viewer-country': 'DE',
      'cloudfront-viewer-address': `${VIEWER_IP}:51234`,
      [ORIGIN_VERIFY_HEADER]: ORIGIN_SECRET,
      ...headers,
    },
    body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    sourceIp: '130.176.0.1',
  });
  const result = (response: { body: string }) => JSON.parse(response.body) as CollectResult;
  let tag = 0;
  /** A url of its own for each test, to find its events on the shared stream. */
  const page = (path = '') => `${SITE}/t${(tag += 1)}${path}`;

  beforeAll(async () => {
    stack = await testStack('collector', { shards: 1 });
    collect = collectorOn(stack.clients.kinesis);
  });
  afterAll(() => stack.destroy());

  it('stores the valid events of a batch, enriched, and names the violation of each invalid one', async () => {
    const url = page();
    const before = Date.now();
    const response = await collect(
      post([
        { url, eventId: 'pv-1' },
        { url: 'not a url' },
        42,
        { url, status: 700 },
        { url, eventId: 'has a space' },
        { url: 12 },
        // Fields the server decides are ignored, whatever the body says; status stays the page's claim.
        {
          url: page('/signed-in'),
          userId: 'signed-in-42',
          browser: 'IE',
          country: 'KP',
          created: 1,
          status: 404,
        },
      ]),
    );
    expect(response.statusCode).toBe(202);
    expect(response.headers['access-control-allow-origin']).toBe(SITE);
    const body = result(response);
    expect(body.accepted.map((a) => a.index)).toEqual([0, 6]);
    expect(body.accepted[0]!.eventId).toBe('pv-1');
    expect(body.rejected.map((r) => [r.index, r.violation])).toEqual([
      [1, 'url_invalid'],
      [2, 'not_object'],
      [3, 'status_out_of_range'],
      [4, 'event_id_invalid'],
      [5, 'wrong_type'],
    ]);

    const stored = (await streamEvents(stack)).filter((e) =>
      body.accepted.some((a) => a.eventId === e.eventId),
    );
    expect(stored).toHaveLength(2);
    const [fromTracker, claiming] = [
      stored.find((e) => e.eventId === 'pv-1')!,
      stored.find((e) => e.eventId !== 'pv-1')!,
    ];
    expect(fromTracker).toMatchObject({ url, status: 200, country: 'DE', browser: 'FF' });
    expect(fromTracker.created).toBeGreaterThanOrEqual(before);
    expect(fromTracker.created).toBeLessThanOrEqual(Date.now());
    expect(fromTracker.userId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(claiming).toMatchObject({ status: 404, country: 'DE', browser: 'FF', userId: fromTracker.userId });
    expect(claiming.created).toBeGreaterThanOrEqual(before);
    expect(claiming.eventId).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.stringify(stored)).not.toContain(VIEWER_IP);
  });

  it('takes the text/plain body that navigator.sendBeacon sends', async () => {
    const url = page();
    const response = await collect(
      post(JSON.stringify({ url, eventId: 'beacon-1' }), { 'content-type': 'text/plain;charset=UTF-8' }),
    );
    expect(response.statusCode).toBe(202);
    expect((await streamEvents(stack)).filter((e) => e.url === url).map((e) => e.eventId)).toEqual([
      'beacon-1',
    ]);
  });

  it('records a viewer country outside the schema as unknown (ZZ) rather than refusing the page view', async () => {
    const url = page();
    const response = await collect(post({ url }, { 'cloudfront-viewer-country': 'XK' }));
    expect(response.statusCode).toBe(202);
    expect((await streamEvents(stack)).filter((e) => e.url === url).map((e) => e.country)).toEqual(['ZZ']);
  });

  it('answers 400 and stores nothing when every event is invalid, or the body is not JSON', async () => {
    const url = page();
    const invalid = await collect(
      post([
        { url, status: 'ok' },
        { url, status: 99 },
      ]),
    );
    expect(invalid.statusCode).toBe(400);
    expect(result(invalid).rejected.map((r) => r.violation)).toEqual(['wrong_type', 'status_out_of_range']);
    const notJson = await collect(post('{"url":'));
    expect(notJson.statusCode).toBe(400);
    expect(JSON.parse(notJson.body).error.code).toBe('not_json');
    expect((await streamEvents(stack)).filter((e) => e.url === url)).toEqual([]);
  });

  it('refuses oversize bodies and oversize batches with 413, other media types with 415, storing nothing', async () => {
    const url = page();
    const big = Array.from({ length: 40 }, () => ({ url: `${url}?${'x'.repeat(2000)}` }));
    expect(JSON.stringify(big).length).toBeGreaterThan(COLLECTOR_LIMITS.maxBodyBytes);
    const oversize = await collect(post(big));
    expect(oversize.statusCode).toBe(413);
    expect(JSON.parse(oversize.body).error.code).toBe('payload_too_large');

    const many = Array.from({ length: COLLECTOR_LIMITS.maxEventsPerRequest + 1 }, () => ({ url }));
    const tooMany = await collect(post(many));
    expect(tooMany.statusCode).toBe(413);
    expect(JSON.parse(tooMany.body).error.code).toBe('too_many_events');

    const form = await collect(post(`url=${url}`, { 'content-type': 'application/x-www-form-urlencoded' }));
    expect(form.statusCode).toBe(415);
    expect((await streamEvents(stack)).filter((e) => e.url.startsWith(url))).toEqual([]);
  });

  it('drops the events of a bot, stores none and counts them', async () => {
    const url = page();
    const before = counts.BotEventsDropped ?? 0;
    const response = await collect(post([{ url }, { url }], { 'user-agent': GOOGLEBOT }));
    expect(response.statusCode).toBe(202);
    expect(result(response)).toEqual({ accepted: [], rejected: [], dropped: 2 });
    expect(counts.BotEventsDropped).toBe(before + 2);
    expect((await streamEvents(stack)).filter((e) => e.url === url)).toEqual([]);
  });

  it("dates a page view by the receive time less the tracker's age, within five minutes", async () => {
    const url = page();
    const now = Date.now();
    const response = await collectorOn(
      stack.clients.kinesis,
      () => now,
    )(
      post([
        { url, eventId: 'fresh' },
        { url, eventId: 'retried', age: 90_000 },
        { url, eventId: 'ancient', age: 2 * 3600_000, created: now - 2 * 3600_000 },
      ]),
    );
    expect(response.statusCode).toBe(202);
    const stored = new Map(
      (await streamEvents(stack)).filter((e) => e.url === url).map((e) => [e.eventId, e.created]),
    );
    expect(Object.fromEntries(stored)).toEqual({ fresh: now, retried: now - 90_000, ancient: now - 300_000 });
    expect(counts.EventAgeClamped).toBeGreaterThanOrEqual(1);
  });

  it('stores a retried request again under the same eventIds, byte for byte, for the batch layer to count once', async () => {
    const url = page();
    const sentAt = Date.now();
    const attempt = (retriedAfterMs: number) =>
      collectorOn(
        stack.clients.kinesis,
        () => sentAt + retriedAfterMs,
      )(
        post([
          { url, eventId: 'retry-a', age: retriedAfterMs },
          { url: page('/b'), eventId: 'retry-b', age: retriedAfterMs },
        ]),
      );
    // The retry arrives 4 s later and says so: the same time, visitor and shard, hence the same record.
    const first = await attempt(0);
    const second = await attempt(4000);
    expect(first.statusCode).toBe(202);
    expect(result(second).accepted).toEqual(result(first).accepted);
    const stored = (await streamEvents(stack)).filter((e) => e.eventId?.startsWith('retry-'));
    expect(stored.map((e) => e.eventId).sort()).toEqual(['retry-a', 'retry-a', 'retry-b', 'retry-b']);
    const a = stored.filter((e) => e.eventId === 'retry-a');
    expect(a[0]).toEqual(a[1]);
  });

  it('gives events the page sent without an id an id of their own', async () => {
    const url = page();
    const response = await collect(post([{ url }, { url }, { url }]));
    const ids = result(response).accepted.map((a) => a.eventId);
    expect(new Set(ids).size).toBe(3);
    const stored = (await streamEvents(stack)).filter((e) => e.url === url);
    expect(stored.map((e) => e.eventId).sort()).toEqual([...ids].sort());
  });

  it('re-sends exactly the entries a throttled PutRecords refused, and stores every event once', async () => {
    const url = page();
    const { client, calls } = throttled(stack.clients.kinesis, (call) => (call === 0 ? [1, 3] : []));
    const events = Array.from({ length: 5 }, (_, i) => ({ url, eventId: `throttled-${i}` }));
    const response = await collectorOn(client)(post(events));
    expect(response.statusCode).toBe(202);
    expect(result(response).accepted.map((a) => a.eventId)).toEqual(events.map((e) => e.eventId));
    expect(calls).toHaveLength(2);
    expect(calls[1]).toEqual([calls[0]![1], calls[0]![3]]);
    const stored = (await streamEvents(stack)).filter((e) => e.url === url).map((e) => e.eventId);
    expect(stored.sort()).toEqual(events.map((e) => e.eventId).sort());
  });

  it('answers 503 with Retry-After, naming what was stored and what was not, while the stream keeps refusing', async () => {
    const url = page();
    const { client, calls } = throttled(stack.clients.kinesis, () => [0]);
    const events = [
      { url, eventId: 'refused-0' },
      { url, eventId: 'refused-1' },
    ];
    const response = await collectorOn(client)(post(events));
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe(String(COLLECTOR_LIMITS.retryAfterSeconds));
    expect(calls).toHaveLength(3);
    const body = result(response);
    expect(body.failed).toEqual([{ index: 0, eventId: 'refused-0' }]);
    expect(body.accepted).toEqual([{ index: 1, eventId: 'refused-1' }]);
    expect((await streamEvents(stack)).filter((e) => e.url === url).map((e) => e.eventId)).toEqual([
      'refused-1',
    ]);

    // The sender retries the whole request with the same ids once the stream takes records again.
    const retried = await collect(post(events));
    expect(retried.statusCode).toBe(202);
  });

  it('answers 503 when a PutRecords call fails as a whole', async () => {
    const url = page();
    const { client } = throttled(
      stack.clients.kinesis,
      () => [],
      () => true,
    );
    const response = await collectorOn(client)(post([{ url, eventId: 'whole-0' }]));
    expect(response.statusCode).toBe(503);
    expect(result(response).failed).toEqual([{ index: 0, eventId: 'whole-0' }]);
    expect((await streamEvents(stack)).filter((e) => e.url === url)).toEqual([]);
  });

  describe('over HTTP, as a function URL passes the requests CloudFront sends', () => {
    let server: RunningHttpApi;
    const fromCloudFront = { [ORIGIN_VERIFY_HEADER]: ORIGIN_SECRET };
    beforeAll(async () => {
      server = await startHttpApi({ handler: createCollectHandler(collect) });
    });
    afterAll(() => server.close());

    it('answers a CORS preflight from an allowed origin', async () => {
      const response = await fetch(`${server.url}${EVENTS_PATH}`, {
        method: 'OPTIONS',
        headers: {
          ...fromCloudFront,
          origin: 'https://www.blog.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        },
      });
      expect(response.status).toBe(204);
      expect(response.headers.get('access-control-allow-origin')).toBe('https://www.blog.example');
      expect(response.headers.get('access-control-allow-methods')).toBe('POST');
      expect(response.headers.get('access-control-allow-headers')).toBe('content-type');
      expect(response.headers.get('vary')).toBe('Origin');
    });

    it('refuses a disallowed origin with 403 and no CORS headers, storing nothing', async () => {
      const url = page();
      for (const method of ['OPTIONS', 'POST']) {
        const response = await fetch(`${server.url}${EVENTS_PATH}`, {
          method,
          headers: {
            ...fromCloudFront,
            origin: 'https://evil.example',
            'content-type': 'text/plain',
            'user-agent': FIREFOX,
          },
          ...(method === 'POST' ? { body: JSON.stringify({ url }) } : {}),
        });
        expect(response.status).toBe(403);
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
          'origin_not_allowed',
        );
        expect(response.headers.get('access-control-allow-origin')).toBeNull();
      }
      expect((await streamEvents(stack)).filter((e) => e.url === url)).toEqual([]);
    });

    it('serves the tracker at its versioned URL for a year, with CORS for SRI and a validator for caches', async () => {
      const asset = trackerAsset(buildTracker().script);
      const response = await fetch(`${server.url}${asset.path}`, { headers: fromCloudFront });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expect(await response.text()).toBe(asset.script);
      const etag = response.headers.get('etag')!;
      const again = await fetch(`${server.url}${asset.path}`, {
        headers: { ...fromCloudFront, 'if-none-match': etag },
      });
      expect(again.status).toBe(304);
      // The unversioned URL of earlier tags: the same script, an hour; another version: gone.
      const unversioned = await fetch(`${server.url}${TRACKER_PATH}`, { headers: fromCloudFront });
      expect(unversioned.headers.get('cache-control')).toBe('public, max-age=3600');
      expect(await unversioned.text()).toBe(asset.script);
      expect((await fetch(`${server.url}/pv.000000000000.js`, { headers: fromCloudFront })).status).toBe(404);
    });

    it('takes a beacon body over HTTP', async () => {
      const url = page();
      const response = await fetch(`${server.url}${EVENTS_PATH}`, {
        method: 'POST',
        headers: {
          ...fromCloudFront,
          origin: SITE,
          'content-type': 'text/plain;charset=UTF-8',
          'user-agent': FIREFOX,
        },
        body: JSON.stringify({ url, eventId: 'http-1' }),
      });
      expect(response.status).toBe(202);
      const stored = (await streamEvents(stack)).filter((e) => e.url === url);
      expect(stored.map((e) => [e.eventId, e.country, e.browser])).toEqual([['http-1', 'ZZ', 'FF']]);
    });
  });
});
