import { EVENT_LIMITS, encodePageView, type PageView } from '../shared/event.js';

/**
 * Hostile traffic for the generator's `--hostile` mode: values at every limit of the event schema and of the
 * stores behind it, in 1- to 4-byte UTF-8 characters, with `#` `?` `%`, emoji and right-to-left text, values
 * that differ only after their first 1,000 bytes, and records just inside and just outside every rule.
 */

/** One character of each UTF-8 width: `x`, `é`, `中`, `😀`. */
export const CHAR_OF_WIDTH: Readonly<Record<1 | 2 | 3 | 4, string>> = {
  1: 'x',
  2: '\u00e9',
  3: '\u4e2d',
  4: '\u{1F600}',
};

/**
 * An absolute url of exactly `bytes` UTF-8 bytes, filled with characters of `width` bytes (ASCII pads the
 * remainder). `tag` makes urls of the same shape distinct.
 */
export function urlOfBytes(bytes: number, width: 1 | 2 | 3 | 4, tag = ''): string {
  const head = `https://h.example/${tag}`;
  const room = bytes - Buffer.byteLength(head, 'utf8');
  if (room < 0) throw new RangeError(`a url of ${bytes} bytes cannot start with ${head}`);
  const url = head + CHAR_OF_WIDTH[width].repeat(Math.floor(room / width)) + 'p'.repeat(room % width);
  return url;
}

const encoder = new TextEncoder();
const json = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));

/** A record of exactly `bytes` bytes: the event padded with an unknown field, which validation drops. */
function recordOfBytes(event: PageView, bytes: number): Uint8Array {
  const bare = Buffer.byteLength(JSON.stringify({ ...event, pad: '' }), 'utf8');
  return json({ ...event, pad: 'p'.repeat(bytes - bare) });
}

export type HostileCase =
  | {
      readonly name: string;
      readonly valid: true;
      readonly event: (base: PageView, n: number) => PageView;
      /** The record bytes, when not the event's plain JSON. */
      readonly data?: (event: PageView) => Uint8Array;
    }
  | {
      readonly name: string;
      readonly valid: false;
      /** The violation validation must name. */
      readonly violation: string;
      readonly data: (base: PageView, n: number) => Uint8Array;
    };

const limit = EVENT_LIMITS;
const accept = (
  name: string,
  event: (base: PageView, n: number) => PageView,
  data?: (event: PageView) => Uint8Array,
): HostileCase => ({ name, valid: true, event, ...(data ? { data } : {}) });
const reject = (
  name: string,
  violation: string,
  data: (base: PageView, n: number) => Uint8Array,
): HostileCase => ({ name, valid: false, violation, data });

/** The rotation of hostile records; `n` counts hostile records so far, to vary values. */
export const HOSTILE_CASES: readonly HostileCase[] = [
  ...([1, 2, 3, 4] as const).map((width) =>
    accept(`url of ${limit.maxUrlBytes} bytes in ${width}-byte characters`, (e, n) => ({
      ...e,
      url: urlOfBytes(limit.maxUrlBytes, width, `${n % 7}/`),
    })),
  ),
  accept('# ? % and emoji in values', (e, n) => ({
    ...e,
    url: `https://h.example/a%20b/\u{1F600}?q=${n % 5}&r=%F0%9F#frag?#x`,
    userId: `u#?%${n % 9}`,
  })),
  accept('right-to-left text', (e, n) => ({
    ...e,
    url: `https://h.example/\u05e9\u05dc\u05d5\u05dd/\u0645\u0631\u062d\u0628\u0627/\u200f${n % 3}`,
  })),
  ...(['A', 'B'] as const).map((tail) =>
    accept(`values that differ only after 1,000 bytes (${tail})`, (e) => ({
      ...e,
      url: `https://h.example/${'s'.repeat(1000)}${tail}`,
    })),
  ),
  accept('the longest event id, browser and user id', (e, n) => ({
    ...e,
    browser: 'b'.repeat(limit.maxBrowserLength - 1) + String(n % 10),
    userId: '~'.repeat(limit.maxUserIdLength - 1) + String(n % 10),
    eventId: `${e.eventId ?? 'h'}#`.padEnd(limit.maxEventIdLength, '%').slice(0, limit.maxEventIdLength),
  })),
  accept('status 100 and 599, country ZZ', (e, n) => ({
    ...e,
    status: n % 2 === 0 ? limit.minStatus : limit.maxStatus,
    country: 'ZZ',
  })),
  accept('utm values of the most bytes in 4-byte characters, quotes and right-to-left text', (e, n) => ({
    ...e,
    utmSource: `"'<src>#?%${n % 4}`,
    utmMedium: `\u05e9\u05dc\u05d5\u05dd ${n % 3}`,
    utmCampaign: CHAR_OF_WIDTH[4].repeat(limit.maxUtmBytes / 4 - 1) + String(n % 10).padEnd(4, '~'),
  })),
  accept('the longest referring host, a tablet on another system', (e, n) => ({
    ...e,
    referrer: [`r${n % 10}`.padEnd(63, 'a'), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.'),
    device: 'tablet',
    os: 'o'.repeat(limit.maxOsLength - 1) + String(n % 10),
  })),
  accept("a referrer on the page's own host, which is no referrer", (e) => ({
    ...e,
    referrer: new URL(e.url).hostname.replace(/^www\./, ''),
  })),
  reject('a utm value one byte too long', 'utm_invalid', (e) =>
    json({ ...e, utmCampaign: CHAR_OF_WIDTH[2].repeat(limit.maxUtmBytes / 2) + 'x' }),
  ),
  reject('a referrer in upper case', 'referrer_invalid', (e) => json({ ...e, referrer: 'Google.com' })),
  reject('a device no rule names', 'device_invalid', (e) => json({ ...e, device: 'phone' })),
  reject('an operating system with a space', 'os_invalid', (e) => json({ ...e, os: 'Windows 11' })),
  reject('a url one byte too long, 1-byte characters', 'url_too_long', (e) =>
    json({ ...e, url: urlOfBytes(limit.maxUrlBytes + 1, 1) }),
  ),
  reject('a url one character too long, 4-byte characters', 'url_too_long', (e) =>
    json({ ...e, url: urlOfBytes(limit.maxUrlBytes + 4, 4) }),
  ),
  reject('a url with a control character', 'url_invalid', (e) => json({ ...e, url: `${e.url}\u0000x` })),
  reject('a url with a lone surrogate', 'url_invalid', (e) =>
    // JSON can spell one (`\ud800`); JSON.stringify never writes one, so splice the escape into the text.
    encoder.encode(
      encodePageView({ ...e, url: 'https://h.example/SURROGATE' }).replace('SURROGATE', '\\ud800'),
    ),
  ),
  reject('status 99', 'status_out_of_range', (e) => json({ ...e, status: limit.minStatus - 1 })),
  reject('status 600', 'status_out_of_range', (e) => json({ ...e, status: limit.maxStatus + 1 })),
  reject('country in lower case', 'country_not_iso3166', (e) => json({ ...e, country: 'zz' })),
  reject('a browser token one too long', 'browser_invalid', (e) =>
    json({ ...e, browser: 'b'.repeat(limit.maxBrowserLength + 1) }),
  ),
  reject('a user id one too long', 'user_id_invalid', (e) =>
    json({ ...e, userId: 'u'.repeat(limit.maxUserIdLength + 1) }),
  ),
  reject('an event id one too long', 'event_id_invalid', (e) =>
    json({ ...e, eventId: 'e'.repeat(limit.maxEventIdLength + 1) }),
  ),
  reject('created one millisecond too old', 'created_too_old', (e) =>
    json({ ...e, created: limit.minCreatedMs - 1 }),
  ),
  accept(
    `a record of exactly ${limit.maxRecordBytes} bytes`,
    (e) => e,
    (e) => recordOfBytes(e, limit.maxRecordBytes),
  ),
  reject(`a record of ${limit.maxRecordBytes + 1} bytes`, 'record_too_large', (e) =>
    recordOfBytes(e, limit.maxRecordBytes + 1),
  ),
];
