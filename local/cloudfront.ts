import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import {
  CLOUDFRONT_VIEWER_HEADERS,
  FORWARDED_VIEWER_HEADERS,
  ORIGIN_VERIFY_HEADER,
  RATE_LIMITED_RETRY_AFTER_SECONDS,
  RATE_LIMITED_STATUS,
  securityHeaders,
  VIEWER_ADDRESS_HEADER,
  VIEWER_COUNTRY_HEADER,
} from '../shared/collection/edge.js';
import { listen } from './http-server.js';

/**
 * Plays the collector's CloudFront distribution and its WAF in front of the local collector, as the deployed
 * ones do (infra/collection-layer.ts, both built from shared/collection/edge.ts):
 * - the WAF's rate-based rule: per viewer address over a trailing window, a 429 beyond the limit, before the
 *   origin is asked;
 * - the origin request policy: only the listed viewer headers reach the origin (a viewer's own
 *   `CloudFront-Viewer-*` or origin-verify header never does);
 * - CloudFront's own headers, from the connection: `CloudFront-Viewer-Address` (`ip:port`) and
 *   `CloudFront-Viewer-Country` (from `countryOf`, the stand-in's geo database);
 * - the origin custom header with the origin secret;
 * - the response headers policy (HSTS, nosniff).
 * The origin stays reachable directly, as a Lambda function URL is: the collector itself refuses what did not come
 * through here. Caching is not played: every request goes to the origin.
 */

export type EdgeFault = 'pass' | 'drop-before-origin' | 'drop-after-origin';

export interface ViewerRequest {
  readonly method: string;
  readonly path: string;
  readonly ip: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

export interface CloudFrontStandInOptions {
  /** Base URL of the collector (the function URL), e.g. http://127.0.0.1:4100. */
  readonly origin: string;
  /** The origin secret CloudFront sends now. */
  readonly originSecret: () => string;
  /** The WAF rate-based rule: at most `limit` requests per viewer address in any trailing `windowSeconds`. */
  readonly rateRule: { readonly limit: number; readonly windowSeconds: number };
  /** The viewer's country by address (ISO 3166 alpha-2); none: no country header, as for an unknown address. */
  readonly countryOf?: (ip: string) => string | undefined;
  /**
   * Tests: network faults between browser and edge. `drop-before-origin` closes the viewer's connection without
   * asking the origin; `drop-after-origin` asks the origin, then closes the connection instead of answering.
   */
  readonly faults?: (request: ViewerRequest) => EdgeFault;
  readonly port?: number;
  readonly host?: string;
}

export interface CloudFrontStats {
  requests: number;
  rateLimited: number;
  forwarded: number;
  dropped: number;
}

export interface RunningCloudFront {
  readonly url: string;
  readonly server: Server;
  readonly stats: Readonly<CloudFrontStats>;
  close(): Promise<void>;
}

/** Request bodies beyond this are refused, as CloudFront refuses bodies beyond its limit. */
const MAX_BODY_BYTES = 1024 * 1024;
const FORWARDED = new Set(FORWARDED_VIEWER_HEADERS.map((h) => h.toLowerCase()));
const ADDED = new Set<string>(CLOUDFRONT_VIEWER_HEADERS.map((h) => h.toLowerCase()));

/** Requests per address over a trailing window, as a WAF rate-based rule counts them. */
export class RateRule {
  private readonly seen = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Counts a request from `key`; false when the address is over the limit. */
  admit(key: string): boolean {
    const now = this.clock();
    const times = (this.seen.get(key) ?? []).filter((t) => t > now - this.windowMs);
    times.push(now);
    this.seen.set(key, times);
    return times.length <= this.limit;
  }
}

const viewerAddress = (request: IncomingMessage) => {
  const address = request.socket.remoteAddress ?? '0.0.0.0';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
};

export async function startCloudFrontStandIn(options: CloudFrontStandInOptions): Promise<RunningCloudFront> {
  const rule = new RateRule(options.rateRule.limit, options.rateRule.windowSeconds * 1000);
  const stats: CloudFrontStats = { requests: 0, rateLimited: 0, forwarded: 0, dropped: 0 };
  const origin = new URL(options.origin);

  const answer = (
    response: ServerResponse,
    status: number,
    headers: Record<string, string>,
    body: string | Buffer = '',
  ) => {
    response.writeHead(status, { ...headers, ...securityHeaders() });
    response.end(body);
  };

  function handle(request: IncomingMessage, response: ServerResponse, body: Buffer): void {
    stats.requests += 1;
    const ip = viewerAddress(request);
    const path = request.url ?? '/';
    if (!rule.admit(ip)) {
      stats.rateLimited += 1;
      answer(response, RATE_LIMITED_STATUS, {
        'content-type': 'text/plain',
        'retry-after': String(RATE_LIMITED_RETRY_AFTER_SECONDS),
      });
      return;
    }
    const fault =
      options.faults?.({ method: request.method ?? 'GET', path, ip, headers: request.headers, body }) ??
      'pass';
    if (fault === 'drop-before-origin') {
      stats.dropped += 1;
      request.socket.destroy();
      return;
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (value !== undefined && FORWARDED.has(name) && !ADDED.has(name))
        headers[name] = Array.isArray(value) ? value.join(',') : value;
    }
    headers[VIEWER_ADDRESS_HEADER] = `${ip}:${request.socket.remotePort ?? 0}`;
    const country = options.countryOf?.(ip);
    if (country) headers[VIEWER_COUNTRY_HEADER] = country;
    headers[ORIGIN_VERIFY_HEADER] = options.originSecret();
    headers['content-length'] = String(body.byteLength);
    stats.forwarded += 1;
    const upstream = httpRequest(
      { host: origin.hostname, port: origin.port, method: request.method, path, headers },
      (reply) => {
        const chunks: Buffer[] = [];
        reply.on('data', (chunk: Buffer) => chunks.push(chunk));
        reply.on('end', () => {
          if (fault === 'drop-after-origin') {
            stats.dropped += 1;
            request.socket.destroy();
            return;
          }
          const replyHeaders: Record<string, string> = {};
          for (const [name, value] of Object.entries(reply.headers)) {
            if (value !== undefined && name !== 'connection' && name !== 'transfer-encoding')
              replyHeaders[name] = Array.isArray(value) ? value.join(', ') : value;
          }
          answer(response, reply.statusCode ?? 502, replyHeaders, Buffer.concat(chunks));
        });
      },
    );
    // CloudFront answers 502 when it cannot reach the origin.
    upstream.on('error', () => answer(response, 502, { 'content-type': 'text/plain' }, 'origin unreachable'));
    upstream.end(body);
  }

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.on('end', () => {
      if (size > MAX_BODY_BYTES) answer(response, 413, { 'content-type': 'text/plain' }, 'body too large');
      else handle(request, response, Buffer.concat(chunks));
    });
  });
  return { ...(await listen(server, options.port, options.host)), server, stats };
}
