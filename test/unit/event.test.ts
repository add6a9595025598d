import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  acceptsPageView,
  COLUMNS,
  decodeBase64PageView,
  decodePageView,
  dimensionValue,
  encodePageView,
  EVENT_LIMITS,
  pageViewSchema,
  validatePageView,
  VIOLATIONS,
  type Violation,
} from '../../shared/event.js';
import { urlOfBytes } from '../../traffic/hostile.js';
import { aPageView, utf8 } from '../support/builders.js';

const NOW = Date.UTC(2026, 10, 25, 12, 31);

function violationOf(value: unknown): Violation | undefined {
  const result = validatePageView(value, NOW);
  return result.ok ? undefined : result.rejection.violation;
}

describe('page-view validation', () => {
  it('accepts the seed event', () => {
    const seed = {
      created: 1433262971414,
      url: 'http://www.example.com/id=1',
      status: 200,
      country: 'US',
      browser: 'FF',
      userId: '723679',
    };
    // Without a site the event belongs to the default one (the stack's setting, else `default`).
    expect(validatePageView(seed, NOW)).toEqual({ ok: true, event: { ...seed, site: 'default' } });
    expect(validatePageView(seed, NOW, 'shop.example')).toEqual({
      ok: true,
      event: { ...seed, site: 'shop.example' },
    });
  });

  it('keeps a site id a key can hold, and names any other site_invalid', () => {
    for (const site of ['example.com', '127.0.0.1', '[::1]', `${'a'.repeat(63)}.${'b'.repeat(189)}`]) {
      expect(validatePageView(aPageView({ site }), NOW)).toMatchObject({ ok: true, event: { site } });
    }
    for (const site of ['', 'Example.com', 'a#b', 'a/b', 'a b', '-a', 'a'.repeat(254), 'é.example']) {
      expect(violationOf(aPageView({ site })), site).toBe('site_invalid');
    }
    expect(violationOf({ ...aPageView(), site: 7 })).toBe('wrong_type');
  });

  it('keeps an optional eventId of 1-64 printable ASCII characters', () => {
    const event = { ...aPageView(), eventId: 'e-'.padEnd(EVENT_LIMITS.maxEventIdLength, '~') };
    expect(validatePageView(event, NOW)).toEqual({ ok: true, event });
    expect(JSON.parse(encodePageView(event))).toEqual(event);
  });

  it('drops unknown fields instead of rejecting the event', () => {
    const result = validatePageView({ ...aPageView(), referer: 'x', source: 'forged' }, NOW);
    expect(result).toEqual({ ok: true, event: aPageView() });
  });

  it.each([
    ['not_object', 42],
    ['not_object', null],
    ['not_object', [aPageView()]],
    ['missing_field', { ...aPageView(), userId: undefined }],
    ['missing_field', { ...aPageView(), created: undefined }],
    ['wrong_type', { ...aPageView(), status: '200' }],
    ['wrong_type', { ...aPageView(), url: 7 }],
    ['created_not_integer', aPageView({ created: 1.5e12 + 0.5 })],
    ['created_too_old', aPageView({ created: EVENT_LIMITS.minCreatedMs - 1 })],
    ['created_in_future', aPageView({ created: NOW + EVENT_LIMITS.maxFutureSkewMs + 1 })],
    ['url_too_long', aPageView({ url: 'http://a.example/' + 'x'.repeat(EVENT_LIMITS.maxUrlBytes) })],
    ['url_too_long', aPageView({ url: urlOfBytes(EVENT_LIMITS.maxUrlBytes + 1, 1) })],
    ['url_too_long', aPageView({ url: urlOfBytes(EVENT_LIMITS.maxUrlBytes + 2, 2) })],
    ['url_too_long', aPageView({ url: urlOfBytes(EVENT_LIMITS.maxUrlBytes + 3, 3) })],
    ['url_too_long', aPageView({ url: urlOfBytes(EVENT_LIMITS.maxUrlBytes + 4, 4) })],
    ['url_invalid', aPageView({ url: 'http://example.com/a\u0000b' })],
    ['url_invalid', aPageView({ url: 'http://example.com/a\u0085b' })],
    ['url_invalid', aPageView({ url: 'http://example.com/\ud800' })],
    ['url_invalid', aPageView({ url: 'ftp://example.com/' })],
    ['url_invalid', aPageView({ url: 'http://example.com/a b' })],
    ['url_invalid', aPageView({ url: '/relative/path' })],
    ['event_id_invalid', { ...aPageView(), eventId: '' }],
    ['event_id_invalid', { ...aPageView(), eventId: 'has space' }],
    ['event_id_invalid', { ...aPageView(), eventId: 'x'.repeat(EVENT_LIMITS.maxEventIdLength + 1) }],
    ['wrong_type', { ...aPageView(), eventId: 7 }],
    ['status_out_of_range', aPageView({ status: 99 })],
    ['status_out_of_range', aPageView({ status: 600 })],
    ['status_out_of_range', aPageView({ status: 200.5 })],
    ['country_not_iso3166', aPageView({ country: 'XX' })],
    ['country_not_iso3166', aPageView({ country: 'us' })],
    ['country_not_iso3166', aPageView({ country: 'USA' })],
    ['browser_invalid', aPageView({ browser: '' })],
    ['browser_invalid', aPageView({ browser: 'has space' })],
    ['browser_invalid', aPageView({ browser: 'b'.repeat(EVENT_LIMITS.maxBrowserLength + 1) })],
    ['user_id_invalid', aPageView({ userId: '' })],
    ['user_id_invalid', aPageView({ userId: 'a b' })],
    ['user_id_invalid', aPageView({ userId: 'u'.repeat(EVENT_LIMITS.maxUserIdLength + 1) })],
  ] as const)('rejects as %s: %j', (violation, value) => {
    expect(violationOf(value)).toBe(violation);
  });

  it.each([
    ['the oldest allowed instant', aPageView({ created: EVENT_LIMITS.minCreatedMs })],
    ['the furthest allowed future skew', aPageView({ created: NOW + EVENT_LIMITS.maxFutureSkewMs })],
    ['the longest url of 1-byte characters', aPageView({ url: urlOfBytes(EVENT_LIMITS.maxUrlBytes, 1) })],
    ['the longest url of 2-byte characters', aPageView({ url: urlOfBytes(EVENT_LIMITS.maxUrlBytes, 2) })],
    ['the longest url of 3-byte characters', aPageView({ url: urlOfBytes(EVENT_LIMITS.maxUrlBytes, 3) })],
    ['the longest url of 4-byte characters', aPageView({ url: urlOfBytes(EVENT_LIMITS.maxUrlBytes, 4) })],
    [
      'a url with # ? % and right-to-left text',
      aPageView({ url: 'https://a.example/\u05e9?q=%20#\u{1F600}' }),
    ],
    ['status 100', aPageView({ status: 100 })],
    ['status 599', aPageView({ status: 599 })],
    ['the unknown country ZZ', aPageView({ country: 'ZZ' })],
    ['the longest browser token', aPageView({ browser: 'b'.repeat(EVENT_LIMITS.maxBrowserLength) })],
    ['the longest user id', aPageView({ userId: 'u'.repeat(EVENT_LIMITS.maxUserIdLength) })],
  ])('accepts %s', (_, event) => {
    expect(validatePageView(event, NOW)).toEqual({ ok: true, event });
  });

  it('names the field in the reason', () => {
    const result = validatePageView(aPageView({ country: 'XX' }), NOW);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.rejection.reason).toMatch(/^country: /);
  });

  it('knows every violation it reports', () => {
    expect(new Set(VIOLATIONS).size).toBe(VIOLATIONS.length);
  });
});

describe('record decoding', () => {
  it('round-trips an encoded event', () => {
    const event = aPageView();
    expect(decodePageView(utf8(encodePageView(event)), NOW)).toEqual({ ok: true, event });
  });

  it('rejects a record over the size limit before parsing it', () => {
    const big = utf8(JSON.stringify({ ...aPageView(), pad: 'x'.repeat(EVENT_LIMITS.maxRecordBytes) }));
    expect(decodePageView(big, NOW)).toMatchObject({
      ok: false,
      rejection: { violation: 'record_too_large' },
    });
  });

  it('rejects invalid UTF-8', () => {
    expect(decodePageView(Uint8Array.from([0x7b, 0xff, 0x7d]), NOW)).toMatchObject({
      ok: false,
      rejection: { violation: 'not_utf8' },
    });
  });

  it('rejects text that is not JSON', () => {
    expect(decodePageView(utf8('{"created":'), NOW)).toMatchObject({
      ok: false,
      rejection: { violation: 'not_json' },
    });
  });

  it('decodes base64 as Lambda receives Kinesis data', () => {
    const data = Buffer.from(encodePageView(aPageView())).toString('base64');
    expect(decodeBase64PageView(data, NOW)).toEqual({ ok: true, event: aPageView() });
    expect(decodeBase64PageView('not base64!', NOW)).toMatchObject({
      ok: false,
      rejection: { violation: 'not_base64' },
    });
  });
});

describe('schema as the source of columns', () => {
  it('lists Parquet/Glue columns in field order with lower-case names, then the derived source and the record identity', () => {
    expect(COLUMNS.map((c) => `${c.name}:${c.type}`)).toEqual([
      'created:bigint',
      'url:string',
      'status:int',
      'country:string',
      'browser:string',
      'userid:string',
      'eventid:string',
      'referrer:string',
      'utmsource:string',
      'utmmedium:string',
      'utmcampaign:string',
      'device:string',
      'os:string',
      'site:string',
      'source:string',
      'userhash:bigint',
      'shardid:string',
      'sequencenumber:string',
    ]);
  });

  it('keys the status dimension by its decimal string', () => {
    expect(dimensionValue(aPageView({ status: 404 }), 'status')).toBe('404');
    expect(dimensionValue(aPageView({ country: 'DE' }), 'country')).toBe('DE');
  });
});

describe('the hot-path predicates', () => {
  it('accept exactly what the zod schema accepts', () => {
    const edgy = <T>(good: fc.Arbitrary<T>) =>
      fc.oneof(
        good,
        fc.constantFrom<unknown>(
          undefined,
          null,
          '',
          ' ',
          0,
          -1,
          1.5,
          NaN,
          Infinity,
          'XX',
          'us',
          '200',
          [],
          {},
        ),
        fc.string(),
        fc.double(),
        fc.integer(),
      );
    const record = fc.record({
      created: edgy(fc.integer({ min: EVENT_LIMITS.minCreatedMs - 2, max: EVENT_LIMITS.minCreatedMs + 2 })),
      url: edgy(
        fc.constantFrom(
          'http://a.example/x',
          'https://b/',
          'ftp://x/',
          'http://a b/',
          'http://' + 'x'.repeat(2050),
        ),
      ),
      status: edgy(fc.integer({ min: 95, max: 605 })),
      country: edgy(fc.constantFrom('US', 'ZZ', 'XX', 'DE')),
      browser: edgy(fc.constantFrom('CH', 'a.b_c-1', 'has space', 'b'.repeat(33))),
      userId: edgy(fc.constantFrom('723679', 'a b', '\u00e9', 'u'.repeat(65))),
      eventId: edgy(fc.constantFrom('e1', 'a b', '\u00e9', 'e'.repeat(65))),
    });
    fc.assert(
      fc.property(record, (value) => {
        expect(acceptsPageView(value)).toBe(pageViewSchema.safeParse(value).success);
      }),
      { numRuns: 5000 },
    );
  });
});
