import { encodePageView, EVENT_LIMITS, type Device, type PageView } from '../shared/event.js';
import { HOSTILE_CASES } from './hostile.js';
import { DEFAULT_SETTINGS } from '../shared/resources.js';

/**
 * Synthetic page-view traffic, after the seed's PageViewGenerator: weighted urls, status codes, countries
 * and browsers, a user-id space, all from a seeded PRNG so that a seed always gives the same records.
 */

/** mulberry32: small, fast, and good enough for synthetic traffic. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Picks from weighted values with one random draw. */
export class WeightedChoice<T> {
  private readonly cumulative: number[] = [];
  private readonly total: number;

  constructor(private readonly entries: ReadonlyArray<readonly [T, number]>) {
    let sum = 0;
    for (const [, weight] of entries) this.cumulative.push((sum += weight));
    this.total = sum;
  }

  pick(random: () => number): T {
    const target = random() * this.total;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return this.entries[lo]![0];
  }
}

const COUNTRY_WEIGHTS: ReadonlyArray<readonly [string, number]> = [
  ['US', 30],
  ['IN', 10],
  ['GB', 8],
  ['DE', 7],
  ['BR', 6],
  ['FR', 5],
  ['JP', 5],
  ['CA', 4],
  ['ES', 3],
  ['IT', 3],
  ['NL', 2],
  ['AU', 2],
  ['MX', 2],
  ['KR', 2],
  ['PL', 2],
  ['SE', 1],
  ['CH', 1],
  ['ZA', 1],
  ['NG', 1],
  ['AR', 1],
  ['ZZ', 1],
];
const BROWSER_WEIGHTS: ReadonlyArray<readonly [string, number]> = [
  ['CH', 55],
  ['SF', 20],
  ['FF', 10],
  ['ED', 10],
  ['OP', 5],
];
const STATUS_WEIGHTS: ReadonlyArray<readonly [number, number]> = [
  [200, 92],
  [404, 5],
  [500, 2],
  [301, 1],
];

/** Referring hosts as stored (no `www.`); `example.com` is the generated site itself, so it counts as direct. */
const REFERRER_WEIGHTS: ReadonlyArray<readonly [string | undefined, number]> = [
  [undefined, 40],
  ['google.com', 20],
  ['example.com', 10],
  ['t.co', 8],
  ['m.facebook.com', 7],
  ['news.ycombinator.com', 5],
  ['duckduckgo.com', 5],
  ['blog.other.org', 5],
];
/** A campaign's `utm_*` fields, or none. */
const CAMPAIGN_WEIGHTS: ReadonlyArray<
  readonly [{ utmSource: string; utmMedium?: string; utmCampaign?: string } | undefined, number]
> = [
  [undefined, 85],
  [{ utmSource: 'newsletter', utmMedium: 'email', utmCampaign: 'spring_sale' }, 8],
  [{ utmSource: 'twitter', utmMedium: 'social', utmCampaign: 'Launch Week' }, 5],
  [{ utmSource: 'partner' }, 2],
];
const DEVICE_WEIGHTS: ReadonlyArray<readonly [Device, number]> = [
  ['desktop', 55],
  ['mobile', 38],
  ['tablet', 5],
  ['other', 2],
];
const OS_WEIGHTS: ReadonlyArray<readonly [string, number]> = [
  ['Windows', 40],
  ['Android', 25],
  ['iOS', 18],
  ['macOS', 12],
  ['Linux', 5],
];

export const RECORD_KINDS = ['valid', 'late', 'duplicate', 'malformed', 'hostile'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

export interface GeneratedRecord {
  readonly kind: RecordKind;
  /** The record payload as a producer sends it. */
  readonly data: Uint8Array;
  readonly partitionKey: string;
  /**
   * The event, when the record is valid. A `duplicate` is a producer re-send of an earlier event: the same
   * event and eventId (the same bytes, or for a hostile re-send the same fields in another order).
   */
  readonly event?: PageView;
  /** For `malformed` and invalid `hostile` records: the violation validation must name. */
  readonly malformation?: string;
  /** For `hostile` records: which case of traffic/hostile.ts it is. */
  readonly hostileCase?: string;
}

export interface GeneratorOptions {
  readonly seed: number;
  /** Event time of the first event, epoch ms. */
  readonly startMs: number;
  /** Events per second of event time; events are spaced 1/rate apart. */
  readonly rate: number;
  /** Share of records whose `created` lies `lateLagMs` in the past. @default 0 */
  readonly lateFraction?: number;
  readonly lateLagMs?: number;
  /** Share of records that re-send the previous record's exact bytes (a producer retry). @default 0 */
  readonly duplicateFraction?: number;
  /** Share of records that break a validation rule. @default 0 */
  readonly malformedFraction?: number;
  /** Share of hostile records (traffic/hostile.ts): limits, odd characters, re-sends, edge cases. @default 0 */
  readonly hostileFraction?: number;
  /** Number of distinct pages. @default 100 */
  readonly urlCount?: number;
  /** Size of the user-id space. @default 1_000_000 */
  readonly userCount?: number;
  /**
   * The sites traffic is spread over (site i has weight 1/i, as pages do). @default none: events name no site and
   * belong to the stack's default one
   */
  readonly sites?: readonly string[];
}

/** The site ids `--sites N` spreads traffic over: none for one site (the default site), else N host names. */
export const generatedSites = (count: number): string[] =>
  count <= 1 ? [] : Array.from({ length: count }, (_, i) => `site${i + 1}.example.com`);

const encoder = new TextEncoder();

/** The rules malformed records break, in rotation; each name is what validation should call it. */
const MALFORMATIONS: ReadonlyArray<readonly [string, (event: PageView) => Uint8Array]> = [
  ['not_json', (e) => encoder.encode(encodePageView(e).slice(0, -7))],
  ['wrong_type', (e) => encoder.encode(JSON.stringify({ ...e, status: String(e.status) }))],
  ['country_not_iso3166', (e) => encoder.encode(JSON.stringify({ ...e, country: 'XX' }))],
  ['url_invalid', (e) => encoder.encode(JSON.stringify({ ...e, url: 'not a url' }))],
  ['created_too_old', (e) => encoder.encode(JSON.stringify({ ...e, created: 0 }))],
  ['missing_field', (e) => encoder.encode(JSON.stringify({ ...e, userId: undefined }))],
  [
    'record_too_large',
    (e) => encoder.encode(JSON.stringify({ ...e, url: e.url + '#'.repeat(EVENT_LIMITS.maxRecordBytes) })),
  ],
  ['not_utf8', (e) => Uint8Array.from([...encoder.encode(encodePageView(e)).slice(0, -2), 0xff, 0x7d])],
  ['status_out_of_range', (e) => encoder.encode(JSON.stringify({ ...e, status: 999 }))],
  ['not_object', (e) => encoder.encode(JSON.stringify([e]))],
];

export class PageViewGenerator {
  private readonly random: () => number;
  private readonly urls: WeightedChoice<string>;
  private readonly countries = new WeightedChoice(COUNTRY_WEIGHTS);
  private readonly browsers = new WeightedChoice(BROWSER_WEIGHTS);
  private readonly statuses = new WeightedChoice(STATUS_WEIGHTS);
  private readonly referrers = new WeightedChoice(REFERRER_WEIGHTS);
  private readonly campaigns = new WeightedChoice(CAMPAIGN_WEIGHTS);
  private readonly devices = new WeightedChoice(DEVICE_WEIGHTS);
  private readonly systems = new WeightedChoice(OS_WEIGHTS);
  private readonly sites: WeightedChoice<string> | undefined;
  private index = 0;
  private malformedIndex = 0;
  private hostileCaseIndex = 0;
  private hostileIndex = 0;
  private previous: GeneratedRecord | undefined;
  /** Event ids: unique per generator start and seed, the same for the same options (deterministic output). */
  private readonly idPrefix: string;

  constructor(private readonly options: GeneratorOptions) {
    for (const key of [
      'lateFraction',
      'duplicateFraction',
      'malformedFraction',
      'hostileFraction',
    ] as const) {
      const share = options[key] ?? 0;
      if (!(share >= 0 && share <= 1)) throw new RangeError(`${key} must be between 0 and 1, got ${share}`);
    }
    if (!(options.rate > 0)) throw new RangeError(`rate must be positive, got ${options.rate}`);
    this.random = seededRandom(options.seed);
    this.idPrefix = `${options.startMs.toString(36)}-${options.seed.toString(36)}-`;
    // Zipf-like page popularity: page i has weight 1/i.
    const urlCount = options.urlCount ?? 100;
    this.urls = new WeightedChoice(
      Array.from(
        { length: urlCount },
        (_, i) => [`http://www.example.com/id=${i + 1}`, 1 / (i + 1)] as const,
      ),
    );
    const sites = options.sites ?? [];
    this.sites =
      sites.length > 0 ? new WeightedChoice(sites.map((s, i) => [s, 1 / (i + 1)] as const)) : undefined;
  }

  /** Event time of the next record before any lateness: the start plus i/rate seconds. */
  get clockMs(): number {
    return this.options.startMs + Math.floor((this.index * 1000) / this.options.rate);
  }

  next(): GeneratedRecord {
    const {
      lateFraction = 0,
      lateLagMs = 0,
      duplicateFraction = 0,
      malformedFraction = 0,
      hostileFraction = 0,
    } = this.options;
    const now = this.clockMs;
    this.index += 1;
    const draw = this.random();
    if (this.previous && draw < duplicateFraction) {
      return (this.previous = { ...this.previous, kind: 'duplicate' });
    }
    const late = draw >= duplicateFraction && draw < duplicateFraction + lateFraction;
    const event = this.event(late ? now - lateLagMs : now);
    if (hostileFraction > 0 && this.random() < hostileFraction) return this.hostile(event);
    if (this.random() < malformedFraction) {
      const [malformation, corrupt] = MALFORMATIONS[this.malformedIndex++ % MALFORMATIONS.length]!;
      return { kind: 'malformed', data: corrupt(event), partitionKey: event.userId, malformation };
    }
    const record: GeneratedRecord = {
      kind: late ? 'late' : 'valid',
      data: encoder.encode(encodePageView(event)),
      partitionKey: event.userId,
      event,
    };
    this.previous = record;
    return record;
  }

  /** The next hostile case in rotation; every third one is preceded by nothing and followed by a re-send. */
  private hostile(base: PageView): GeneratedRecord {
    const n = this.hostileIndex++;
    const previousEvent = this.previous?.event;
    if (n % 3 === 2 && previousEvent) {
      // A producer re-send: the same event and eventId, its fields in another order (other bytes).
      const reordered = Object.fromEntries(Object.entries(previousEvent).reverse());
      return {
        kind: 'duplicate',
        data: encoder.encode(JSON.stringify(reordered)),
        partitionKey: previousEvent.userId,
        event: previousEvent,
        hostileCase: 'a producer re-send with the same eventId',
      };
    }
    // Cases rotate on their own count: were they indexed by n, a case count divisible by 3 would skip a third.
    const hostile = HOSTILE_CASES[this.hostileCaseIndex++ % HOSTILE_CASES.length]!;
    if (!hostile.valid) {
      return {
        kind: 'hostile',
        data: hostile.data(base, n),
        partitionKey: base.userId,
        malformation: hostile.violation,
        hostileCase: hostile.name,
      };
    }
    const event = hostile.event(base, n);
    const record: GeneratedRecord = {
      kind: 'hostile',
      data: hostile.data ? hostile.data(event) : encoder.encode(encodePageView(event)),
      partitionKey: event.userId,
      event,
      hostileCase: hostile.name,
    };
    this.previous = record;
    return record;
  }

  *take(count: number): Generator<GeneratedRecord> {
    for (let i = 0; i < count; i += 1) yield this.next();
  }

  private event(created: number): PageView {
    return {
      created,
      url: this.urls.pick(this.random),
      status: this.statuses.pick(this.random),
      country: this.countries.pick(this.random),
      browser: this.browsers.pick(this.random),
      userId: String(1 + Math.floor(this.random() * (this.options.userCount ?? 1_000_000))),
      eventId: this.idPrefix + this.index.toString(36),
      ...this.origin(),
      // Without sites no draw is taken, so a seed gives the traffic it gave before sites existed.
      site: this.sites?.pick(this.random) ?? DEFAULT_SETTINGS.defaultSite,
    };
  }

  /** Where the page view came from and what it ran on (the sources issue's fields). */
  private origin(): Partial<PageView> {
    const referrer = this.referrers.pick(this.random);
    const campaign = this.campaigns.pick(this.random);
    return {
      ...(referrer === undefined ? {} : { referrer }),
      ...campaign,
      device: this.devices.pick(this.random),
      os: this.systems.pick(this.random),
    };
  }
}

/** Counts of what a generator produced, by kind; `events` counts every record that carries a valid event. */
export class GenerationSummary {
  readonly byKind: Record<RecordKind, number> = {
    valid: 0,
    late: 0,
    duplicate: 0,
    malformed: 0,
    hostile: 0,
  };
  /** Records that carry a valid event, re-sends included. */
  accepted = 0;
  readonly malformations: Record<string, number> = {};
  minCreated = Infinity;
  maxCreated = -Infinity;

  add(record: GeneratedRecord): void {
    this.byKind[record.kind] += 1;
    if (record.malformation)
      this.malformations[record.malformation] = (this.malformations[record.malformation] ?? 0) + 1;
    if (record.event) {
      this.accepted += 1;
      this.minCreated = Math.min(this.minCreated, record.event.created);
      this.maxCreated = Math.max(this.maxCreated, record.event.created);
    }
  }

  get records(): number {
    return Object.values(this.byKind).reduce((a, b) => a + b, 0);
  }

  /** Distinct page views, what the batch layer counts: a re-send carries its event's eventId. */
  get events(): number {
    return this.accepted - this.byKind.duplicate;
  }
}
