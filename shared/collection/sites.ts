/**
 * The sites a collector takes page views for. An entry is a host name (`example.com`, `127.0.0.1`) or
 * `*.example.com` for every subdomain of example.com (not example.com itself). A browser's request names the page
 * it comes from (`Origin`, or `Referer` for a beacon that carries no Origin); that site must be on the list, and
 * every event's url must be on that same site, so that no page can count views for someone else's.
 * Each entry may carry a keep-list: the query parameters that stay in its urls (see urls.ts).
 */

const ENTRY = /^(\*\.)?([a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/;
/** A query parameter name of a keep-list: no separator or fragment character, at most 64 characters. */
const PARAMETER = /^[^&=#\s]{1,64}$/;

export class SiteListError extends Error {
  override readonly name = 'SiteListError';
}

/** Query parameters to keep, by site entry (an entry of the allow-list). */
export type KeepParameters = Readonly<Record<string, readonly string[]>>;

export class SiteAllowList {
  private readonly hosts: ReadonlySet<string>;
  private readonly suffixes: readonly string[];
  private readonly keep: ReadonlyMap<string, readonly string[]>;

  constructor(
    readonly entries: readonly string[],
    keepParameters: KeepParameters = {},
  ) {
    const bad = entries.filter((entry) => !ENTRY.test(entry));
    if (bad.length > 0) {
      throw new SiteListError(
        `not a host name or *.domain: ${bad.map((b) => JSON.stringify(b)).join(', ')} (lower case, no scheme or port)`,
      );
    }
    const problems: string[] = [];
    for (const [site, names] of Object.entries(keepParameters)) {
      if (!entries.includes(site)) problems.push(`${JSON.stringify(site)} is not one of the sites`);
      const wrong = names.filter((name) => !PARAMETER.test(name));
      if (wrong.length > 0)
        problems.push(`${site}: not a parameter name: ${wrong.map((w) => JSON.stringify(w)).join(', ')}`);
    }
    if (problems.length > 0) throw new SiteListError(`keep-list: ${problems.join('; ')}`);
    this.hosts = new Set(entries.filter((e) => !e.startsWith('*.')));
    this.suffixes = entries.filter((e) => e.startsWith('*.')).map((e) => e.slice(1));
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
    const host = hostname.toLowerCase();
    return this.hosts.has(host) || this.suffixes.some((suffix) => host.endsWith(suffix));
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
  | { readonly ok: true; readonly origin: string; readonly host: string }
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
  if (!url || !sites.allowsHost(url.hostname)) {
    return {
      ok: false,
      rule: 'origin_not_allowed',
      message: `${origin ? 'origin' : 'referer'} ${url?.origin ?? JSON.stringify(named)} is not a site this collector serves`,
    };
  }
  return { ok: true, origin: url.origin, host: url.hostname };
}
