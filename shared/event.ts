import { z } from 'zod';
import { ISO_3166_ALPHA2 } from './countries.js';
import { sourceOf } from './sources.js';
import { fitsUtf8Bytes } from './utf8.js';
import { DEFAULT_SETTINGS } from './resources.js';

/**
 * The page-view event: one JSON object per Kinesis record (UTF-8).
 * This module is the single source of truth for its validation, its TypeScript type and the
 * Parquet/Glue columns that Firehose writes and Athena/DuckDB read.
 */

/** Limits of a valid event; documented in docs/event-model.md. */
export const EVENT_LIMITS = {
  /** Largest record payload accepted, in bytes (UTF-8 JSON). */
  maxRecordBytes: 4096,
  /** UTF-8 bytes; keys hold a bounded form of longer values (shared/keys.ts), so this is not a key limit. */
  maxUrlBytes: 2048,
  minStatus: 100,
  maxStatus: 599,
  maxBrowserLength: 32,
  maxUserIdLength: 64,
  maxEventIdLength: 64,
  /** A DNS name's longest text form. */
  maxReferrerLength: 253,
  /** UTF-8 bytes of a `utm_*` value; far below the key bound (shared/keys.ts), so no two values share a key. */
  maxUtmBytes: 128,
  maxOsLength: 32,
  /** A site id is a host name (or a bracketed IPv6 literal): at most a DNS name's length, ASCII, in every key. */
  maxSiteLength: 253,
  /** 2000-01-01T00:00:00Z: nothing older is a plausible page view. */
  minCreatedMs: 946_684_800_000,
  /** Producers' clocks may run ahead of ours; more than this is rejected. */
  maxFutureSkewMs: 15 * 60_000,
} as const;

/** What a rejected record is called, in logs, metrics and the dead-letter store. */
export const VIOLATIONS = [
  'not_base64',
  'not_utf8',
  'not_json',
  'not_object',
  'record_too_large',
  'missing_field',
  'wrong_type',
  'created_not_integer',
  'created_too_old',
  'created_in_future',
  'url_too_long',
  'url_invalid',
  'status_out_of_range',
  'country_not_iso3166',
  'browser_invalid',
  'user_id_invalid',
  'event_id_invalid',
  'referrer_invalid',
  'utm_invalid',
  'device_invalid',
  'os_invalid',
  'site_invalid',
] as const;
export type Violation = (typeof VIOLATIONS)[number];

const violationSet: ReadonlySet<string> = new Set(VIOLATIONS);

/** Missing fields and wrong JSON types get their own names whatever the field. */
const typed = (what: 'string' | 'number') => ({
  error: (issue: { input?: unknown }) =>
    issue.input === undefined ? 'missing_field' : `wrong_type: expected ${what}`,
});

/** Absolute http(s) URL without whitespace or control characters (browsers percent-encode both). */
const URL_PATTERN = /^https?:\/\/[^\s/?#\p{Cc}]+[^\s\p{Cc}]*$/u;
/** A lone UTF-16 surrogate (from a JSON `\ud800` escape) has no UTF-8 form, so no store can hold it. */
const LONE_SURROGATE = /\p{Cs}/u;
const urlFits = (v: string): boolean => fitsUtf8Bytes(v, EVENT_LIMITS.maxUrlBytes);
const urlValid = (v: string): boolean => URL_PATTERN.test(v) && !LONE_SURROGATE.test(v);
const TOKEN_PATTERN = /^[A-Za-z0-9._-]+$/;
const USER_ID_PATTERN = /^[\x21-\x7e]+$/;

/**
 * Each field: its zod check (messages are violation names), the same rule as a plain predicate for the hot
 * path (test/unit/event.test.ts proves both agree), and its Glue/Athena column type.
 * Field order here is the column order of the Parquet files and the Glue table.
 */
/** A referring host as stored (shared/sources.ts): lower-case DNS labels, no `www.`-stripping checked here. */
const HOST_PATTERN =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** Text a key can hold: no control characters, no lone surrogates, something besides spaces. */
const UTM_INVALID = /[\p{Cc}\p{Cs}]/u;
const utmValid = (v: unknown): boolean =>
  typeof v === 'string' &&
  v.trim() !== '' &&
  fitsUtf8Bytes(v, EVENT_LIMITS.maxUtmBytes) &&
  !UTM_INVALID.test(v);
/** Device classes, as Plausible's Devices panel names them: a producer may send one, the collector derives it. */
export const DEVICES = ['desktop', 'mobile', 'tablet', 'other'] as const;
export type Device = (typeof DEVICES)[number];
const DEVICE_SET: ReadonlySet<string> = new Set(DEVICES);

/**
 * A site id: lower-case host-name characters (`example.com`, `127.0.0.1`) or a bracketed IPv6 literal, as the
 * collector's allow-list spells hosts. No `#`, `/` or space, so it is one unambiguous segment of every key.
 */
const SITE_PATTERN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])$/;
export const isSiteId = (v: unknown): v is string => typeof v === 'string' && SITE_PATTERN.test(v);

const optionalString = (violation: Violation, accept: (v: string) => boolean) =>
  z.string({ error: 'wrong_type: expected string' }).refine(accept, { error: violation }).optional();

/** A `utm_*` parameter of the page url as a field (optional). */
const utmField = (parameter: string) =>
  ({
    schema: optionalString('utm_invalid', utmValid),
    glueType: 'string',
    accept: (v: unknown) => v === undefined || utmValid(v),
    comment: `${parameter} of the page url (optional)`,
  }) as const;

const PRINTABLE_ID = (max: number) => (v: unknown) =>
  typeof v === 'string' && v.length <= max && USER_ID_PATTERN.test(v);

const fields = {
  created: {
    schema: z
      .number(typed('number'))
      .int({ error: 'created_not_integer' })
      .gte(EVENT_LIMITS.minCreatedMs, { error: 'created_too_old' })
      .lte(Number.MAX_SAFE_INTEGER, { error: 'created_in_future' }),
    glueType: 'bigint',
    accept: (v: unknown) =>
      Number.isInteger(v) &&
      (v as number) >= EVENT_LIMITS.minCreatedMs &&
      (v as number) <= Number.MAX_SAFE_INTEGER,
    comment: 'event time, epoch milliseconds UTC',
  },
  url: {
    schema: z
      .string(typed('string'))
      .refine(urlFits, { error: 'url_too_long', abort: true })
      .refine(urlValid, { error: 'url_invalid' }),
    glueType: 'string',
    accept: (v: unknown) => typeof v === 'string' && urlFits(v) && urlValid(v),
    comment: 'absolute http(s) URL of the page',
  },
  status: {
    schema: z
      .number(typed('number'))
      .int({ error: 'status_out_of_range' })
      .gte(EVENT_LIMITS.minStatus, { error: 'status_out_of_range' })
      .lte(EVENT_LIMITS.maxStatus, { error: 'status_out_of_range' }),
    glueType: 'int',
    accept: (v: unknown) =>
      Number.isInteger(v) &&
      (v as number) >= EVENT_LIMITS.minStatus &&
      (v as number) <= EVENT_LIMITS.maxStatus,
    comment: 'HTTP status code',
  },
  country: {
    schema: z.string(typed('string')).refine((c) => ISO_3166_ALPHA2.has(c), { error: 'country_not_iso3166' }),
    glueType: 'string',
    accept: (v: unknown) => typeof v === 'string' && ISO_3166_ALPHA2.has(v),
    comment: 'ISO 3166-1 alpha-2 code, upper case; ZZ for unknown',
  },
  browser: {
    schema: z
      .string(typed('string'))
      .max(EVENT_LIMITS.maxBrowserLength, { error: 'browser_invalid' })
      .regex(TOKEN_PATTERN, { error: 'browser_invalid' }),
    glueType: 'string',
    accept: (v: unknown) =>
      typeof v === 'string' && v.length <= EVENT_LIMITS.maxBrowserLength && TOKEN_PATTERN.test(v),
    comment: 'browser family token, e.g. FF, CH',
  },
  userId: {
    schema: z
      .string(typed('string'))
      .max(EVENT_LIMITS.maxUserIdLength, { error: 'user_id_invalid' })
      .regex(USER_ID_PATTERN, { error: 'user_id_invalid' }),
    glueType: 'string',
    accept: PRINTABLE_ID(EVENT_LIMITS.maxUserIdLength),
    comment: 'pseudonymous user id',
  },
  eventId: {
    // Optional: a producer's identity for one page view, so that a re-send is counted once.
    schema: z
      .string({ error: 'wrong_type: expected string' })
      .max(EVENT_LIMITS.maxEventIdLength, { error: 'event_id_invalid' })
      .regex(USER_ID_PATTERN, { error: 'event_id_invalid' })
      .optional(),
    glueType: 'string',
    accept: (v: unknown) => v === undefined || PRINTABLE_ID(EVENT_LIMITS.maxEventIdLength)(v),
    comment: 'producer event id (optional): re-sends carry the same one',
  },
  referrer: {
    schema: optionalString('referrer_invalid', (v) => HOST_PATTERN.test(v)),
    glueType: 'string',
    accept: (v: unknown) => v === undefined || (typeof v === 'string' && HOST_PATTERN.test(v)),
    comment: 'referring host, lower case, without www. (optional: none)',
  },
  utmSource: utmField('utm_source'),
  utmMedium: utmField('utm_medium'),
  utmCampaign: utmField('utm_campaign'),
  device: {
    schema: optionalString('device_invalid', (v) => DEVICE_SET.has(v)),
    glueType: 'string',
    accept: (v: unknown) => v === undefined || (typeof v === 'string' && DEVICE_SET.has(v)),
    comment: 'desktop, mobile, tablet or other (optional: other)',
  },
  os: {
    schema: optionalString(
      'os_invalid',
      (v) => v.length <= EVENT_LIMITS.maxOsLength && TOKEN_PATTERN.test(v),
    ),
    glueType: 'string',
    accept: (v: unknown) =>
      v === undefined ||
      (typeof v === 'string' && v.length <= EVENT_LIMITS.maxOsLength && TOKEN_PATTERN.test(v)),
    comment: 'operating system token, e.g. Windows, iOS (optional: Other)',
  },
  site: {
    // Optional in a record: without it the event belongs to the stack's default site (Settings.defaultSite).
    schema: optionalString('site_invalid', isSiteId),
    glueType: 'string',
    accept: (v: unknown) => v === undefined || isSiteId(v),
    comment: "site id: the allow-listed host for a collected event, else the producer's or the default site",
  },
} as const;

/** The optional fields after eventId, in schema order: absent means none. */
const OPTIONAL_FIELDS = ['referrer', 'utmSource', 'utmMedium', 'utmCampaign', 'device', 'os'] as const;

type FieldName = keyof typeof fields;

export const pageViewSchema = z.object({
  created: fields.created.schema,
  url: fields.url.schema,
  status: fields.status.schema,
  country: fields.country.schema,
  browser: fields.browser.schema,
  userId: fields.userId.schema,
  eventId: fields.eventId.schema,
  referrer: fields.referrer.schema,
  utmSource: fields.utmSource.schema,
  utmMedium: fields.utmMedium.schema,
  utmCampaign: fields.utmCampaign.schema,
  device: fields.device.schema,
  os: fields.os.schema,
  site: fields.site.schema,
});

/**
 * A valid page view. Unknown JSON fields are dropped (forward compatible producers). `site` is always set after
 * validation: the record's own, or the stack's default site.
 */
export type PageView = Omit<z.infer<typeof pageViewSchema>, 'site'> & { readonly site: string };

export const FIELD_NAMES = Object.keys(fields) as FieldName[];

/**
 * A row of the master dataset: the event and the identity of the Kinesis record that carried it
 * (Firehose's transform input has it as `kinesisRecordMetadata`). Copies of one record share the identity,
 * so the batch views count each record once however often Firehose delivers it.
 */
export interface MasterRecord extends PageView {
  readonly shardId: string;
  /** Decimal string of up to 129 digits (wider than any SQL integer type). */
  readonly sequenceNumber: string;
  /**
   * The visitor hash of userId (shared/sketch: the top 52 bits of its SHA-256), computed once in JS so that the
   * batch SQL's visitor sketches and the speed layer's come from the very same hash.
   */
  readonly userHash: number;
  /** The page view's source (shared/sources.ts), derived once so that the batch SQL counts what the speed layer does. */
  readonly source: string;
}

/** Column of the Parquet master dataset and of the Glue table (Athena/Trino type names). */
export interface Column {
  /** Column name as stored: lower case, because Glue/Athena fold names to lower case. */
  readonly name: string;
  /** The field it comes from. */
  readonly field: keyof MasterRecord;
  readonly type: 'bigint' | 'int' | 'string';
  readonly comment: string;
}

/**
 * Columns in file order: the event's fields, its derived source, the visitor hash, then the record identity.
 * `userId` is `userid`, `utmSource` `utmsource`.
 */
export const COLUMNS: readonly Column[] = [
  ...FIELD_NAMES.map((field) => ({
    name: field.toLowerCase(),
    field,
    type: fields[field].glueType,
    comment: fields[field].comment,
  })),
  { name: 'source', field: 'source', type: 'string', comment: 'source: utm_source, else the referrer list' },
  {
    name: 'userhash',
    field: 'userHash',
    type: 'bigint',
    comment: 'visitor hash of userid (52 bits of SHA-256)',
  },
  { name: 'shardid', field: 'shardId', type: 'string', comment: 'Kinesis shard of the record' },
  {
    name: 'sequencenumber',
    field: 'sequenceNumber',
    type: 'string',
    comment: 'Kinesis sequence number of the record (with shardid: its identity)',
  },
];

/** The dimensions that events are counted by, besides the all-events total. */
export const DIMENSIONS = [
  'url',
  'country',
  'browser',
  'status',
  'referrer',
  'source',
  'utm_source',
  'utm_medium',
  'utm_campaign',
  'device',
  'os',
] as const;
export type Dimension = (typeof DIMENSIONS)[number];

export function isDimension(value: string): value is Dimension {
  return (DIMENSIONS as readonly string[]).includes(value);
}

/** The value of a dimension of an event, as the string the counters and views are keyed by. */
export function dimensionValue(event: PageView, dimension: Dimension): string {
  switch (dimension) {
    case 'status':
      return String(event.status);
    case 'referrer':
      return event.referrer ?? NO_VALUE;
    case 'source':
      return sourceOf(event);
    case 'utm_source':
      return event.utmSource ?? NO_VALUE;
    case 'utm_medium':
      return event.utmMedium ?? NO_VALUE;
    case 'utm_campaign':
      return event.utmCampaign ?? NO_VALUE;
    case 'device':
      return event.device ?? 'other';
    case 'os':
      return event.os ?? 'Other';
    default:
      return event[dimension];
  }
}

/**
 * The value counted for a field the event does not carry (no referrer, no campaign). No accepted value equals it:
 * a referrer is a lower-case host and a `utm_*` value here would have come with the field.
 */
export const NO_VALUE = '(none)';

/** Whether one optional field's value passes its rule (the collector keeps only those). */
export function acceptsField(field: (typeof OPTIONAL_FIELDS)[number], value: unknown): boolean {
  return fields[field].accept(value);
}

/** True when every field passes its rule: the fast equivalent of `pageViewSchema.safeParse(v).success`. */
export function acceptsPageView(record: Record<string, unknown>): boolean {
  return (
    fields.created.accept(record.created) &&
    fields.url.accept(record.url) &&
    fields.status.accept(record.status) &&
    fields.country.accept(record.country) &&
    fields.browser.accept(record.browser) &&
    fields.userId.accept(record.userId) &&
    fields.eventId.accept(record.eventId) &&
    OPTIONAL_FIELDS.every((field) => fields[field].accept(record[field])) &&
    fields.site.accept(record.site)
  );
}

export interface Rejection {
  readonly violation: Violation;
  /** Human-readable detail: the field and what was wrong with it. */
  readonly reason: string;
}

export type Validated = { ok: true; event: PageView } | { ok: false; rejection: Rejection };

function reject(violation: Violation, reason: string): Validated {
  return { ok: false, rejection: { violation, reason } };
}

/**
 * Validates a parsed JSON value as a page view.
 * @param nowMs the validator's clock, for the future-skew bound.
 * @param defaultSite the site of an event that names none (the stack's Settings.defaultSite).
 */
export function validatePageView(
  value: unknown,
  nowMs: number,
  defaultSite: string = DEFAULT_SETTINGS.defaultSite,
): Validated {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return reject(
      'not_object',
      `expected a JSON object, got ${Array.isArray(value) ? 'array' : typeof value}`,
    );
  }
  const record = value as Record<string, unknown>;
  // Hot path: the plain predicates accept nearly every record; zod runs only to name what is wrong.
  if (acceptsPageView(record)) {
    const event: PageView = {
      created: record.created as number,
      url: record.url as string,
      status: record.status as number,
      country: record.country as string,
      browser: record.browser as string,
      userId: record.userId as string,
      ...(record.eventId === undefined ? {} : { eventId: record.eventId as string }),
      site: (record.site as string | undefined) ?? defaultSite,
    };
    for (const field of OPTIONAL_FIELDS) {
      if (record[field] !== undefined) (event as Record<string, unknown>)[field] = record[field];
    }
    if (event.created > nowMs + EVENT_LIMITS.maxFutureSkewMs) {
      return reject('created_in_future', `created: ${event.created} is more than 15 min ahead of ${nowMs}`);
    }
    return { ok: true, event };
  }
  const parsed = pageViewSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = String(issue.path[0] ?? '');
    const [name, detail] = issue.message.split(': ', 2) as [string, string | undefined];
    const violation = violationSet.has(name) ? (name as Violation) : 'wrong_type';
    return reject(violation, `${field}: ${detail ?? name}`);
  }
  if (parsed.data.created > nowMs + EVENT_LIMITS.maxFutureSkewMs) {
    return reject(
      'created_in_future',
      `created: ${parsed.data.created} is more than 15 min ahead of ${nowMs}`,
    );
  }
  return { ok: true, event: { ...parsed.data, site: parsed.data.site ?? defaultSite } };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes and validates one record payload (the bytes a producer put into Kinesis). */
export function decodePageView(
  payload: Uint8Array,
  nowMs: number,
  defaultSite: string = DEFAULT_SETTINGS.defaultSite,
): Validated {
  if (payload.byteLength > EVENT_LIMITS.maxRecordBytes) {
    return reject('record_too_large', `${payload.byteLength} bytes > ${EVENT_LIMITS.maxRecordBytes}`);
  }
  const bytes = Buffer.isBuffer(payload)
    ? payload
    : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  // The fast lenient decode is exact unless it had to substitute U+FFFD; only then decode strictly.
  let text = bytes.toString('utf8');
  if (text.includes('\uFFFD')) {
    try {
      text = utf8.decode(payload);
    } catch {
      return reject('not_utf8', 'payload is not valid UTF-8');
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return reject('not_json', (error as Error).message);
  }
  return validatePageView(value, nowMs, defaultSite);
}

/** Decodes a base64 record as Lambda receives Kinesis data, then validates it. */
export function decodeBase64PageView(
  data: string,
  nowMs: number,
  defaultSite: string = DEFAULT_SETTINGS.defaultSite,
): Validated {
  const bytes = Buffer.from(data, 'base64');
  // Buffer.from skips characters outside the alphabet, so a wrong length is how invalid base64 shows.
  const padding = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  if (data.length % 4 !== 0 || bytes.length !== (data.length / 4) * 3 - padding) {
    return reject('not_base64', 'record data is not valid base64');
  }
  return decodePageView(bytes, nowMs, defaultSite);
}

/** The JSON line a producer sends for an event: fields in schema order. */
export function encodePageView(event: PageView): string {
  return JSON.stringify({
    created: event.created,
    url: event.url,
    status: event.status,
    country: event.country,
    browser: event.browser,
    userId: event.userId,
    ...(event.eventId === undefined ? {} : { eventId: event.eventId }),
    ...Object.fromEntries(OPTIONAL_FIELDS.filter((f) => event[f] !== undefined).map((f) => [f, event[f]])),
    site: event.site,
  });
}
