import { createHash } from 'node:crypto';

/**
 * The tracker as the collector serves it: a versioned, immutable URL (`/pv.<version>.js`, the version a digest of
 * the script, so a new script is a new URL) that browsers and CloudFront keep for a year, and its Subresource
 * Integrity hash for the script tag. `/pv.js`, the unversioned URL of earlier tags, keeps serving the current
 * script with an hour's caching.
 */

export const TRACKER_PATH = '/pv.js';
const VERSIONED = /^\/pv\.([0-9a-f]{12})\.js$/;

export interface TrackerAsset {
  readonly script: string;
  /** The first 12 hex digits of the script's SHA-256. */
  readonly version: string;
  /** `/pv.<version>.js` */
  readonly path: string;
  /** `sha384-…`, the script tag's `integrity` (SRI). */
  readonly integrity: string;
  readonly etag: string;
}

export function trackerAsset(script: string): TrackerAsset {
  const version = createHash('sha256').update(script).digest('hex').slice(0, 12);
  return {
    script,
    version,
    path: `/pv.${version}.js`,
    integrity: `sha384-${createHash('sha384').update(script).digest('base64')}`,
    etag: `"${version}"`,
  };
}

/** Whether a path is a tracker URL: the unversioned one, or a version (this one or another). */
export function trackerPathVersion(path: string): { readonly version?: string } | undefined {
  if (path === TRACKER_PATH) return {};
  const match = VERSIONED.exec(path);
  return match ? { version: match[1]! } : undefined;
}

/**
 * The tag a site puts on its pages. `crossorigin` makes the browser fetch the script with CORS, which SRI needs for
 * a script from another origin; the collector answers it with `Access-Control-Allow-Origin: *`.
 */
export function trackerScriptTag(
  collectorUrl: string,
  asset: Pick<TrackerAsset, 'path' | 'integrity'>,
): string {
  return `<script defer src="${collectorUrl}${asset.path}" integrity="${asset.integrity}" crossorigin="anonymous"></script>`;
}
