import { randomUUID } from 'node:crypto';
import { ISO_3166_ALPHA2 } from '../countries.js';
import {
  acceptsField,
  decodePageView,
  encodePageView,
  EVENT_LIMITS,
  type PageView,
  type Violation,
} from '../event.js';
import type { ProducerRecord } from '../kinesis-producer.js';
import { referrerHostOf } from '../sources.js';
import { ORIGIN_VERIFY_HEADER, VIEWER_ADDRESS_HEADER, VIEWER_COUNTRY_HEADER } from './edge.js';
import { browserToken, deviceAndOs, eventTime, isBot, VisitorIds } from './enrich.js';
import type { OriginCheck } from './origin-verify.js';
import { originOf, requestSite, type SiteAllowList, type SiteRule } from './sites.js';
import type { EventStreamWriter } from './stream-writer.js';
import { trackerAsset, trackerPathVersion, TRACKER_PATH, type TrackerAsset } from './tracker-asset.js';
import { normalizePageUrl } from './urls.js';

/**
 * The public collector: `POST /v1/events` takes page views from browsers (one event or a batch, as JSON or as
 * the text/plain body `navigator.sendBeacon` sends), decides every field a browser cannot prove (time, browser,
 * country, visitor, shard), validates the events with the pipeline's own validator, and puts the accepted ones on
 * the stream. `GET /pv.<version>.js` serves the tracker script. Every byte a caller sends is hostile: only
 * requests that carry CloudFront's origin secret are served at all (docs/collector.md).
 * Plain request in, plain response out: the Lambda handler and the local HTTP server adapt to it.
 */

export const COLLECTOR_LIMITS = {
  /**
   * Largest body taken. Browsers cap a beacon's (and a keepalive fetch's) body at 64 KiB, so no tracker sends
   * more; anything larger is refused with 413 before it is parsed.
   */
  maxBodyBytes: 64 * 1024,
  /**
   * Most events in one request. A request's events go to the stream in one PutRecords call (at most 500 entries
   * and 5 MiB; 100 records of at most 4 KiB are 400 KiB), so a request is answered from one call and its retry
   * repeats one call. A 64 KiB body holds a few hundred minimal events; 100 leaves room for real urls.
   */
  maxEventsPerRequest: 100,
  /** Seconds a sender should wait before retrying after a 503. */
  retryAfterSeconds: 2,
} as const;

/** Why the collector turned an event down: the validator's violation. */
export type CollectViolation = Violation;

export interface CollectResult {
  /** Stored on the stream, by position in the request and the eventId it was stored with. */
  readonly accepted: ReadonlyArray<{ readonly index: number; readonly eventId: string }>;
  readonly rejected: ReadonlyArray<{
    readonly index: number;
    readonly violation: CollectViolation;
    readonly reason: string;
  }>;
  /** Valid events the stream did not take (503 only): send them again, with the same eventIds. */
  readonly failed?: ReadonlyArray<{ readonly index: number; readonly eventId: string }>;
  /** Events dropped by policy (a bot's User-Agent); not stored, not an error. */
  readonly dropped: number;
}

export interface CollectErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

export interface CollectRequest {
  readonly method: string;
  readonly path: string;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body?: Uint8Array;
  /** The address that connected to the collector: CloudFront's, behind it (the viewer's is a CloudFront header). */
  readonly sourceIp: string;
}

export interface CollectResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export type CollectorMetric =
  | 'EventsAccepted'
  | 'EventsRejected'
  | 'BotEventsDropped'
  | 'EventAgeClamped'
  | 'UrlParametersRemoved'
  | 'RecordsResent'
  | 'StreamWriteFailures'
  | 'RequestsRefused'
  | 'OriginUnverified'
  | 'SiteRefused';

export interface CollectorObserver {
  count(metric: CollectorMetric, value: number): void;
  error?(message: string, error: unknown): void;
}

export interface CollectorConfig {
  readonly sites: SiteAllowList;
  /** Secret key of the visitor hash (Secrets Manager on AWS; never in code). */
  readonly visitorKey: string | Uint8Array;
  /** The origin secret check: only requests that came through CloudFront are served. */
  readonly origin: OriginCheck;
  /** The built tracker script served at /pv.<version>.js. */
  readonly trackerScript?: string;
}

export interface CollectorDeps {
  readonly writer: EventStreamWriter;
  readonly config: CollectorConfig;
  readonly clock?: () => number;
  readonly newEventId?: () => string;
  readonly observer?: CollectorObserver;
}

export type Collector = (request: CollectRequest) => Promise<CollectResponse>;

export const EVENTS_PATH = '/v1/events';
export { TRACKER_PATH };

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function createCollector(deps: CollectorDeps): Collector {
  const clock = deps.clock ?? Date.now;
  const newEventId = deps.newEventId ?? randomUUID;
  const visitors = new VisitorIds(deps.config.visitorKey);
  const { sites } = deps.config;
  const count = (metric: CollectorMetric, value: number) => {
    if (value > 0) deps.observer?.count(metric, value);
  };
  const tracker: TrackerAsset | undefined = deps.config.trackerScript
    ? trackerAsset(deps.config.trackerScript)
    : undefined;

  function respond(
    statusCode: number,
    body: CollectResult | CollectErrorBody | undefined,
    headers: Record<string, string> = {},
  ): CollectResponse {
    if (statusCode >= 400 && statusCode !== 503 && body && 'error' in body) count('RequestsRefused', 1);
    return {
      statusCode,
      headers: {
        ...(body ? { 'content-type': 'application/json' } : {}),
        'cache-control': 'no-store',
        ...headers,
      },
      body: body ? JSON.stringify(body) : '',
    };
  }
  const refuse = (statusCode: number, code: string, message: string, headers?: Record<string, string>) =>
    respond(statusCode, { error: { code, message } }, headers);
  const refuseSite = (rule: SiteRule, message: string) => {
    count('SiteRefused', 1);
    return refuse(403, rule, message, { vary: 'Origin' });
  };

  function serveTracker(request: CollectRequest, version: string | undefined): CollectResponse {
    if (!tracker) return refuse(404, 'not_found', 'no tracker script configured');
    // Another version is a script this collector no longer has: the page's tag (and its SRI hash) needs updating.
    if (version !== undefined && version !== tracker.version) {
      return refuse(
        404,
        'not_found',
        `tracker version ${version} is not served; the current one is ${tracker.path}`,
      );
    }
    const headers = {
      'content-type': 'text/javascript; charset=utf-8',
      // A versioned URL never changes content: browsers and CloudFront keep it a year. /pv.js, an hour.
      'cache-control': version === undefined ? 'public, max-age=3600' : 'public, max-age=31536000, immutable',
      etag: tracker.etag,
      // The tag loads it with crossorigin (SRI needs CORS for a script of another origin); it is public.
      'access-control-allow-origin': '*',
    };
    if (request.headers['if-none-match'] === tracker.etag) return { statusCode: 304, headers, body: '' };
    return { statusCode: 200, headers, body: request.method === 'HEAD' ? '' : tracker.script };
  }

  async function collect(
    request: CollectRequest,
    site: { origin: string; host: string; site: string },
    cors: Record<string, string>,
  ): Promise<CollectResponse> {
    const body = request.body ?? new Uint8Array();
    if (body.byteLength > COLLECTOR_LIMITS.maxBodyBytes) {
      return refuse(
        413,
        'payload_too_large',
        `body of ${body.byteLength} bytes; at most ${COLLECTOR_LIMITS.maxBodyBytes}`,
        cors,
      );
    }
    const mediaType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (mediaType !== 'application/json' && mediaType !== 'text/plain') {
      return refuse(
        415,
        'unsupported_media_type',
        `content-type ${mediaType || '(none)'}; send application/json or text/plain`,
        cors,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(utf8.decode(body));
    } catch (error) {
      const notUtf8 = error instanceof TypeError;
      return refuse(
        400,
        notUtf8 ? 'not_utf8' : 'not_json',
        notUtf8 ? 'body is not UTF-8' : `body is not JSON: ${(error as Error).message}`,
        cors,
      );
    }
    const items = Array.isArray(parsed) ? parsed : [parsed];
    if (items.length === 0) return refuse(400, 'no_events', 'the body is an empty array', cors);
    if (items.length > COLLECTOR_LIMITS.maxEventsPerRequest) {
      return refuse(
        413,
        'too_many_events',
        `${items.length} events; at most ${COLLECTOR_LIMITS.maxEventsPerRequest} per request`,
        cors,
      );
    }
    // A page counts views of itself only: every url that names a site must name the request's.
    const foreign = items.findIndex((item) => {
      const url = (item as { url?: unknown } | null)?.url;
      const origin = typeof url === 'string' ? originOf(url) : undefined;
      return origin !== undefined && origin !== site.origin;
    });
    if (foreign >= 0) {
      return refuseSite(
        'url_host_mismatch',
        `event ${foreign}: its url is not on ${site.origin}, the site the request comes from`,
      );
    }
    const userAgent = request.headers['user-agent'] ?? '';
    if (isBot(userAgent)) {
      count('BotEventsDropped', items.length);
      return respond(202, { accepted: [], rejected: [], dropped: items.length }, cors);
    }

    const now = clock();
    // Decided here, never taken from the body: country and address from CloudFront, browser from the User-Agent.
    const viewerCountry = request.headers[VIEWER_COUNTRY_HEADER];
    // A code CloudFront knows and the schema does not (e.g. XK) is an unknown country, not a reason to refuse.
    const country = viewerCountry && ISO_3166_ALPHA2.has(viewerCountry) ? viewerCountry : 'ZZ';
    const browser = browserToken(userAgent);
    const { device, os } = deviceAndOs(userAgent);
    const visitor = visitors.visitorId(site.host, viewerIp(request), userAgent, now);
    const keep = sites.keepFor(site.host);
    // Constant for the request: the site's own host as a referrer (a visitor moving between its pages).
    const ownHost = ownReferrerHost(site.host);
    const rejected: CollectResult['rejected'][number][] = [];
    const valid: { index: number; eventId: string; record: ProducerRecord }[] = [];
    let clamped = 0;
    let removedParameters = 0;
    items.forEach((item, index) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        rejected.push({ index, violation: 'not_object', reason: 'expected a JSON object' });
        return;
      }
      const fields = item as Record<string, unknown>;
      const time = eventTime(fields.age, now);
      const normalized = typeof fields.url === 'string' ? normalizePageUrl(fields.url, keep) : undefined;
      // The body says only which page (url, its utm_* parameters included), its HTTP status (a claim, checked
      // for 100-599), how long ago, the page it came from, and the page view's identity for deduplication;
      // everything else in it is ignored. A referrer or campaign value no rule accepts is dropped, not the view.
      const candidate = {
        created: time.created,
        url: normalized?.url ?? fields.url,
        status: fields.status ?? 200,
        country,
        browser,
        userId: visitor,
        eventId: fields.eventId ?? newEventId(),
        ...acceptedOrigin(fields.referrer, normalized?.utm ?? {}, ownHost),
        device,
        os,
        // The allow-list entry that admitted the request names the site; a `site` in the body is ignored.
        site: site.site,
      };
      // The pipeline's own rules, on the exact bytes that go to the stream (record size included).
      const checked = decodePageView(Buffer.from(JSON.stringify(candidate)), now);
      if (!checked.ok) {
        rejected.push({ index, ...checked.rejection });
        return;
      }
      if (time.clamped) clamped += 1;
      removedParameters += normalized?.removedParameters ?? 0;
      const eventId = checked.event.eventId!;
      valid.push({
        index,
        eventId,
        record: {
          data: Buffer.from(encodePageView(checked.event)),
          partitionKey: visitors.partitionKey(visitor, eventId, now),
        },
      });
    });
    count('EventAgeClamped', clamped);
    count('UrlParametersRemoved', removedParameters);
    count('EventsRejected', rejected.length);
    if (valid.length === 0) return respond(400, { accepted: [], rejected, dropped: 0 }, cors);

    const written = await deps.writer.put(valid.map((v) => v.record));
    count('RecordsResent', written.resent);
    const accepted = valid
      .filter((_, i) => written.stored[i])
      .map(({ index, eventId }) => ({ index, eventId }));
    const failed = valid
      .filter((_, i) => !written.stored[i])
      .map(({ index, eventId }) => ({ index, eventId }));
    count('EventsAccepted', accepted.length);
    if (failed.length > 0) {
      count('StreamWriteFailures', failed.length);
      deps.observer?.error?.('the stream did not take every event', written.error);
      return respond(
        503,
        { accepted, rejected, failed, dropped: 0 },
        { ...cors, 'retry-after': String(COLLECTOR_LIMITS.retryAfterSeconds) },
      );
    }
    return respond(202, { accepted, rejected, dropped: 0 }, cors);
  }

  return async (request) => {
    // First of all: a request that did not come through CloudFront is answered with nothing but a refusal.
    if (!(await deps.config.origin.verify(request.headers[ORIGIN_VERIFY_HEADER]))) {
      count('OriginUnverified', 1);
      return refuse(
        403,
        'origin_unverified',
        'the collector is reached only through its CloudFront distribution',
      );
    }
    const method = request.method.toUpperCase();
    const trackerPath = trackerPathVersion(request.path);
    if (trackerPath) {
      if (method !== 'GET' && method !== 'HEAD') {
        return refuse(405, 'method_not_allowed', `${request.path} answers GET`, { allow: 'GET, HEAD' });
      }
      return serveTracker(request, trackerPath.version);
    }
    if (request.path !== EVENTS_PATH) return refuse(404, 'not_found', `no route for ${request.path}`);

    const site = requestSite(request.headers, sites);
    if (!site.ok) return refuseSite(site.rule, site.message);
    // Only a browser's own Origin is echoed; a beacon identified by its Referer reads no answer anyway.
    const origin = request.headers.origin;
    const cors: Record<string, string> =
      origin === site.origin ? { 'access-control-allow-origin': origin, vary: 'Origin' } : { vary: 'Origin' };
    if (method === 'OPTIONS') {
      return respond(204, undefined, {
        ...cors,
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': 'content-type',
        'access-control-max-age': '86400',
      });
    }
    if (method !== 'POST') {
      return refuse(405, 'method_not_allowed', `${EVENTS_PATH} answers POST`, {
        ...cors,
        allow: 'POST, OPTIONS',
      });
    }
    return collect(request, site, cors);
  };
}

/** The UTM parameters that become fields, by the event model's field names. */
const UTM_FIELDS = { utm_source: 'utmSource', utm_medium: 'utmMedium', utm_campaign: 'utmCampaign' } as const;

/**
 * The referring host (from the tracker's `document.referrer`, any URL; none when it is `ownHost`, the site's
 * own, from ownReferrerHost once per request) and the
 * page's `utm_*` values, each kept only when the event model accepts it: a caller's bytes never make a page view fail on a field it may omit.
 */
/** The host a page of the site has as a referrer (shared/sources.ts referrerHostOf), for acceptedOrigin. */
export const ownReferrerHost = (siteHost: string): string | undefined =>
  referrerHostOf(`https://${siteHost}/`);

export function acceptedOrigin(
  referrer: unknown,
  utm: Readonly<Record<string, string>>,
  ownHost?: string,
): Partial<Pick<PageView, 'referrer' | 'utmSource' | 'utmMedium' | 'utmCampaign'>> {
  const origin: Record<string, string> = {};
  const host =
    typeof referrer === 'string' && referrer.length <= EVENT_LIMITS.maxUrlBytes
      ? referrerHostOf(referrer)
      : undefined;
  // A page of the site itself (a visitor moving between pages) is no referrer.
  if (host !== undefined && host !== ownHost && acceptsField('referrer', host)) origin.referrer = host;
  for (const [parameter, field] of Object.entries(UTM_FIELDS)) {
    const value = utm[parameter]?.trim();
    if (value !== undefined && acceptsField(field, value)) origin[field] = value;
  }
  return origin;
}

/**
 * The viewer's address, used only inside the visitor hash. CloudFront's `CloudFront-Viewer-Address` (`ip:port`)
 * names it; the collector is reached through CloudFront only, so the header is CloudFront's. Without it (a
 * distribution whose policy lost the header) the connecting address stands in.
 */
export function viewerIp(request: CollectRequest): string {
  const viewer = request.headers[VIEWER_ADDRESS_HEADER];
  if (viewer) return viewer.slice(0, viewer.lastIndexOf(':')) || viewer;
  return request.sourceIp;
}
