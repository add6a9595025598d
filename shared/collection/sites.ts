import { isSiteId } from '../event.js';

/**
 * The sites a collector takes page views for. An entry is a host name (`example.com`, `127.0.0.1`) or
 * `*.example.com` for every subdomain of example.com (not example.com itself). A browser's request names the page
 * it comes from (`Origin`, or `Referer` for a beacon that carries no Origin); that site must be on the list, and
 * every event's url must be on that same site, so that no page can count views for someone else's.
 * Each entry may carry a keep-list: the query parameters that stay in its urls (see urls.ts).
 * Each entry names the site its page views belong to (docs/sites.md): `host=site` says which (so that
 * `example.com` and `www.example.com=example.com` are one site); without `=`, the host itself, or for
 * `*.example.com` the domain `example.com`.
 */

const ENTRY = /^(\*\.)?([a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/;
/** A query parameter name of a keep-list: no separator or fragment character, at most 64 characters. */
const PARAMETER = /^[^&=#\s]{1,64}$/;

/**
 * The site id of an allow-list entry: the host itself, or for `*.example.com` the domain `example.com`, so that
 * every subdomain an entry admits counts for one site (docs/sites.md).
 */
export function siteOfEntry(entry: string): string {
  const equals = entry.indexOf('=');
  if (equals >= 0) return entry.slice(equals + 1);
  return entry.startsWith('*.') ? entry.slice(2) : entry;
}

/** The host pattern of an entry: what it matches, without its `=site`. */
const patternOf = (entry: string): string => entry.split('=', 1)[0]!;

export class SiteListError extends Error {
  override readonly name = 'SiteListError';
}

/** Query parameters to keep, by site entry (an entry of the allow-list). */
export type KeepParameters = Readonly<Record<string, readonly string[]>>;

export class SiteAllowList {
  private readonly hosts: ReadonlySet<string>;
  private readonly suffixes: readonly string[];
  private readonly keep: ReadonlyMap<string, readonly string[]>;
  /** The entry of each host pattern. */
  private readonly byPattern: ReadonlyMap<string, string>;

  constructor(
    readonly entries: readonly string[],
    keepParameters: KeepParameters = {},
  ) {
    const bad = entries.filter((entry) => !ENTRY.test(patternOf(entry)));
    if (bad.length > 0) {
      throw new SiteListError(
        `not a host name or *.domain: ${bad.map((b) => JSON.stringify(b)).join(', ')} (lower case, no scheme or port)`,
      );
    }
    const badSites = entries.filter((entry) => !isSiteId(siteOfEntry(entry)));
    if (badSites.length > 0) {
      throw new SiteListError(
        `not a site id after "=": ${badSites.map((b) => JSON.stringify(b)).join(', ')} (a lower-case host name)`,
      );
    }
    const patterns = entries.map(patternOf);
    const problems: string[] = [];
    for (const [site, names] of Object.entries(keepParameters)) {
      if (!patterns.includes(site)) problems.push(`${JSON.stringify(site)} is not one of the sites`);
      const wrong = names.filter((name) => !PARAMETER.test(name));
      if (wrong.length > 0)
        problems.push(`${site}: not a parameter name: ${wrong.map((w) => JSON.stringify(w)).join(', ')}`);
    }
    if (problems.length > 0) throw new SiteListError(`keep-list: ${problems.join('; ')}`);
    this.hosts = new Set(patterns.filter((e) => !e.startsWith('*.')));
    this.suffixes = patterns.filter((e) => e.startsWith('*.')).map((e) => e.slice(1));
    this.byPattern = new Map(entries.map((entry) => [patternOf(entry), entry]));
    this.keep = new Map(Object.entries(keepParameters));
  }

  /** Parses a comma-separated list, e.g. the `COLLECTOR_SITES` variable. */
  static parse(text: string, keepParameters: KeepParameters = {}): SiteAllowList {
    return new SiteAllowList(
      text
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean),
      keepParameters,
    );
  }

  allowsHost(hostname: string): boolean {
    return this.entryFor(hostname) !== undefined;
  }

  /**
   * The entry that admits a host, if any: the host's own entry first, else the longest `*.domain` it ends with
   * (the most specific one), so that one host always belongs to one site.
   */
  entryFor(hostname: string): string | undefined {
    const host = hostname.toLowerCase();
    if (this.hosts.has(host)) return this.byPattern.get(host);
    let best: string | undefined;
    for (const suffix of this.suffixes) {
      if (host.endsWith(suffix) && (best === undefined || suffix.length > best.length)) best = suffix;
    }
    return best === undefined ? undefined : this.byPattern.get(`*${best}`);
  }

  /** The site ids of the entries (siteOfEntry), each once. */
  get siteIds(): readonly string[] {
    return [...new Set(this.entries.map(siteOfEntry))];
  }

  /** The query parameters a url of this host keeps: those of every entry that matches it. */
  keepFor(hostname: string): ReadonlySet<string> {
    const host = hostname.toLowerCase();
    const names = new Set<string>(this.keep.get(host) ?? []);
    for (const suffix of this.suffixes) {
      if (host.endsWith(suffix)) for (const name of this.keep.get(`*${suffix}`) ?? []) names.add(name);
    }
    return names;
  }
}

/** The host name of an http(s) URL, or undefined when it is not one. */
export function hostOf(url: string): string | undefined {
  return httpUrl(url)?.hostname;
}

/** The origin (`scheme://host[:port]`) of an http(s) URL, or undefined when it is not one. */
export function originOf(url: string): string | undefined {
  return httpUrl(url)?.origin;
}

function httpUrl(url: string): URL | undefined {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Why a request is refused its site: the rule it broke, named in the 403's `error.code`. */
export type SiteRule = 'origin_required' | 'origin_not_allowed' | 'url_host_mismatch';

export type RequestSite =
  | {
      readonly ok: true;
      readonly origin: string;
      readonly host: string;
      /** The site the request's events belong to: that of the allow-list entry that admitted it. */
      readonly site: string;
    }
  | { readonly ok: false; readonly rule: SiteRule; readonly message: string };

/**
 * The site a browser request comes from. Browsers send `Origin` on every cross-origin POST (the tracker's fetch)
 * and, depending on the page's referrer policy, on a beacon; a beacon without it carries `Referer`. `Origin: null`
 * (a sandboxed frame, a `no-referrer` page) names no site, so the Referer is asked instead.
 */
export function requestSite(
  headers: Readonly<Record<string, string | undefined>>,
  sites: SiteAllowList,
): RequestSite {
  const origin = headers.origin && headers.origin !== 'null' ? headers.origin : undefined;
  const named = origin ?? headers.referer;
  if (named === undefined) {
    return {
      ok: false,
      rule: 'origin_required',
      message: 'a browser request carries Origin (or Referer, for a beacon); this one has neither',
    };
  }
  const url = httpUrl(named);
  const entry = url && sites.entryFor(url.hostname);
  if (!url || entry === undefined) {
    return {
      ok: false,
      rule: 'origin_not_allowed',
      message: `${origin ? 'origin' : 'referer'} ${url?.origin ?? JSON.stringify(named)} is not a site this collector serves`,
    };
  }
  return { ok: true, origin: url.origin, host: url.hostname, site: siteOfEntry(entry) };
}
