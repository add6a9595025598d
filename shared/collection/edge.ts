/**
 * The contract between CloudFront and the collector, in one place: the CDK distribution (infra/collection-layer.ts)
 * and its local stand-in (local/cloudfront.ts) are built from it, and the collector reads what it names.
 */

/**
 * The header CloudFront adds to every origin request with the origin secret (an origin custom header). The
 * collector refuses a request without a current value: only CloudFront can reach it. A viewer's own header of this
 * name never reaches the origin: the origin request policy forwards only the viewer headers listed below.
 */
export const ORIGIN_VERIFY_HEADER = 'x-origin-verify';

/**
 * Added by CloudFront from the viewer's connection when the origin request policy lists them ("Add CloudFront
 * request headers", CloudFront developer guide); the collector reads them only on a verified request.
 */
export const VIEWER_COUNTRY_HEADER = 'cloudfront-viewer-country';
export const VIEWER_ADDRESS_HEADER = 'cloudfront-viewer-address';

/**
 * The viewer's headers CloudFront passes to the collector (the origin request policy of `/v1/events`): what the
 * site binding, the browser and bot checks and CORS need. No cookie, no query string, no forwarding headers.
 */
export const FORWARDED_VIEWER_HEADERS = [
  'Origin',
  'Referer',
  'User-Agent',
  'Content-Type',
  'Access-Control-Request-Method',
  'Access-Control-Request-Headers',
] as const;

/** The headers CloudFront adds from the viewer's connection, in the same policy. */
export const CLOUDFRONT_VIEWER_HEADERS = ['CloudFront-Viewer-Country', 'CloudFront-Viewer-Address'] as const;

/**
 * The response headers policy of every behaviour: HSTS (two years, subdomains; no preload, which is the site
 * owner's decision for a domain of their own) and `nosniff`, so that a response is never run as another type.
 */
export const SECURITY_RESPONSE_HEADERS = {
  hstsMaxAgeSeconds: 2 * 365 * 24 * 3600,
  hstsIncludeSubdomains: true,
} as const;

/** The same headers as a response carries them (the stand-in adds these). */
export function securityHeaders(): Record<string, string> {
  return {
    'strict-transport-security': `max-age=${SECURITY_RESPONSE_HEADERS.hstsMaxAgeSeconds}${SECURITY_RESPONSE_HEADERS.hstsIncludeSubdomains ? '; includeSubDomains' : ''}`,
    'x-content-type-options': 'nosniff',
  };
}

/**
 * The per-client limit: a WAF rate-based rule per viewer IP over a trailing window, on by default (config keys
 * `collectorIpRateLimit`, `collectorIpRateWindowSeconds`). 2,000 requests per 5 minutes is ~6.7 page views a second
 * from one address, far above a person browsing, with room for an office or a carrier NAT behind one address.
 * WAF allows windows of 60, 120, 300 or 600 s and limits from 10.
 */
export const DEFAULT_RATE_RULE = { limit: 2000, windowSeconds: 300 } as const;
export const RATE_WINDOWS_SECONDS = [60, 120, 300, 600] as const;
/** What a rate-limited client gets: 429 with a hint, from the edge, before any Lambda invocation. */
export const RATE_LIMITED_STATUS = 429;
export const RATE_LIMITED_RETRY_AFTER_SECONDS = 60;
