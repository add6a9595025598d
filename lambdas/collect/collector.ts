import { createHash, randomUUID } from 'node:crypto';
import { ISO_3166_ALPHA2 } from '../../shared/countries.js';
import { decodePageView, encodePageView, type Violation } from '../../shared/event.js';
import type { ProducerRecord } from '../../shared/kinesis-producer.js';
import { browserToken, eventTime, isBot, VisitorIds } from './enrich.js';
import { hostOf, type SiteAllowList } from './sites.js';
import type { EventStreamWriter } from './stream-writer.js';

/**
 * The public collector: `POST /v1/events` takes page views from browsers (one event or a batch, as JSON or as
 * the text/plain body `navigator.sendBeacon` sends), enriches them, validates them with the pipeline's own
 * validator, and puts the accepted ones on the stream. `GET /pv.js` serves the tracker script.
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

/** Why the collector turned an event down: the validator's violation, or a site that is not allowed. */
export type CollectViolation = Violation | 'site_not_allowed';

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
  /** The client's address as the front door saw it (behind CloudFront, `cloudfront-viewer-address` wins). */
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
  | 'ClientClockCorrected'
  | 'RecordsResent'
  | 'StreamWriteFailures'
  | 'RequestsRefused';

export interface CollectorObserver {
  count(metric: CollectorMetric, value: number): void;
  error?(message: string, error: unknown): void;
}

export interface CollectorConfig {
  readonly sites: SiteAllowList;
  /** Secret key of the visitor hash (Secrets Manager on AWS; never in code). */
  readonly visitorKey: string | Uint8Array;
  /** The built tracker script served at /pv.js. */
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
export const TRACKER_PATH = '/pv.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function createCollector(deps: CollectorDeps): Collector {
  const clock = deps.clock ?? Date.now;
  const newEventId = deps.newEventId ?? randomUUID;
  const visitors = new VisitorIds(deps.config.visitorKey);
  const { sites } = deps.config;
  const count = (metric: CollectorMetric, value: number) => {
    if (value > 0) deps.observer?.count(metric, value);
  };
  const tracker = deps.config.trackerScript;
  const trackerEtag = tracker
    ? `"${createHash('sha256').update(tracker).digest('base64url').slice(0, 22)}"`
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

  function serveTracker(request: CollectRequest): CollectResponse {
    if (!tracker || !trackerEtag) return refuse(404, 'not_found', 'no tracker script configured');
    const headers = {
      'content-type': 'text/javascript; charset=utf-8',
      // CloudFront and browsers keep it an hour: a new tracker reaches every page within the hour.
      'cache-control': 'public, max-age=3600',
      etag: trackerEtag,
    };
    if (request.headers['if-none-match'] === trackerEtag) return { statusCode: 304, headers, body: '' };
    return { statusCode: 200, headers, body: request.method === 'HEAD' ? '' : tracker };
  }

  async function collect(request: CollectRequest, cors: Record<string, string>): Promise<CollectResponse> {
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
    const userAgent = request.headers['user-agent'] ?? '';
    if (isBot(userAgent)) {
      count('BotEventsDropped', items.length);
      return respond(202, { accepted: [], rejected: [], dropped: items.length }, cors);
    }

    const now = clock();
    const ip = clientIp(request);
    // A code CloudFront knows and the schema does not (e.g. XK) is an unknown country, not a reason to refuse.
    const viewerCountry = request.headers['cloudfront-viewer-country'];
    const country = viewerCountry && (ISO_3166_ALPHA2.has(viewerCountry) ? viewerCountry : 'ZZ');
    const browser = browserToken(userAgent);
    const rejected: CollectResult['rejected'][number][] = [];
    const valid: { index: number; eventId: string; record: ProducerRecord }[] = [];
    let corrected = 0;
    items.forEach((item, index) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        rejected.push({ index, violation: 'not_object', reason: 'expected a JSON object' });
        return;
      }
      const fields = item as Record<string, unknown>;
      const time = eventTime(fields.created, now);
      if (time.corrected) corrected += 1;
      const site = typeof fields.url === 'string' ? hostOf(fields.url) : undefined;
      const candidate = {
        created: time.created,
        url: fields.url,
        status: fields.status ?? 200,
        country: country ?? fields.country ?? 'ZZ',
        browser: fields.browser ?? browser,
        userId: fields.userId ?? (site ? visitors.visitorId(site, ip, userAgent, now) : undefined),
        eventId: fields.eventId ?? newEventId(),
      };
      // The pipeline's own rules, on the exact bytes that go to the stream (record size included).
      const checked = decodePageView(Buffer.from(JSON.stringify(candidate)), now);
      if (!checked.ok) {
        rejected.push({ index, ...checked.rejection });
        return;
      }
      const host = hostOf(checked.event.url);
      if (host === undefined || !sites.allowsHost(host)) {
        rejected.push({
          index,
          violation: 'site_not_allowed',
          reason: `url: ${host ?? '(no host)'} is not a site this collector takes page views for`,
        });
        return;
      }
      const eventId = checked.event.eventId!;
      valid.push({
        index,
        eventId,
        record: { data: Buffer.from(encodePageView(checked.event)), partitionKey: eventId },
      });
    });
    count('ClientClockCorrected', corrected);
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
    const method = request.method.toUpperCase();
    if (request.path === TRACKER_PATH) {
      if (method !== 'GET' && method !== 'HEAD') {
        return refuse(405, 'method_not_allowed', `${TRACKER_PATH} answers GET`, { allow: 'GET, HEAD' });
      }
      return serveTracker(request);
    }
    if (request.path !== EVENTS_PATH) return refuse(404, 'not_found', `no route for ${request.path}`);

    // A browser says where the page is; a server-to-server sender has no Origin and is checked by url host.
    const origin = request.headers.origin;
    if (origin !== undefined && !sites.allowsOrigin(origin)) {
      return refuse(403, 'origin_not_allowed', `origin ${origin} is not a site this collector serves`, {
        vary: 'Origin',
      });
    }
    const cors: Record<string, string> =
      origin === undefined ? { vary: 'Origin' } : { 'access-control-allow-origin': origin, vary: 'Origin' };
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
    return collect(request, cors);
  };
}

/**
 * The client's address, used only inside the visitor hash. Behind CloudFront the API sees an edge address:
 * CloudFront's `CloudFront-Viewer-Address` (`ip:port`, set by CloudFront, forwarded by the origin request policy)
 * names the viewer.
 */
export function clientIp(request: CollectRequest): string {
  const viewer = request.headers['cloudfront-viewer-address'];
  if (viewer) return viewer.slice(0, viewer.lastIndexOf(':')) || viewer;
  return request.sourceIp;
}
