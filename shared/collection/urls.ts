/**
 * Url normalization at the collector: a page view's url keeps what names the page and loses what names the visit.
 * Click ids (`fbclid`, `gclid`), session tokens and cache busters would otherwise make every visit a url of its
 * own, which costs storage in every layer and buries the page in the long tail. The rule (docs/collector.md):
 * the fragment goes, the host is lower case, and every query parameter goes except those on the site's keep-list,
 * which stay byte for byte, sorted by name. `utm_*` parameters leave the url too, but are handed back apart: the
 * sources issue stores them as fields of their own.
 */

export interface NormalizedUrl {
  /** The url as stored. */
  readonly url: string;
  /** The `utm_*` parameters, by name in lower case, decoded (the last one wins when a name repeats). */
  readonly utm: Readonly<Record<string, string>>;
  /** Query parameters taken out of the url, `utm_*` ones included. */
  readonly removedParameters: number;
}

const UTM_PREFIX = 'utm_';

/** A query component as `application/x-www-form-urlencoded` reads it; a malformed escape stays as it is. */
function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/**
 * Normalizes an absolute http(s) url; anything else (not a string url, another scheme) is undefined, for the
 * validator to name. `keep` holds the parameter names (decoded, case-sensitive) that stay in the url.
 */
export function normalizePageUrl(raw: string, keep: ReadonlySet<string>): NormalizedUrl | undefined {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
  const query = parsed.search.slice(1);
  const kept: { name: string; part: string }[] = [];
  const utm: Record<string, string> = {};
  let removedParameters = 0;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decodeComponent(eq < 0 ? part : part.slice(0, eq));
    if (keep.has(name)) {
      kept.push({ name, part });
      continue;
    }
    removedParameters += 1;
    if (name.toLowerCase().startsWith(UTM_PREFIX)) {
      utm[name.toLowerCase()] = decodeComponent(eq < 0 ? '' : part.slice(eq + 1));
    }
  }
  // Sorted, so that `?b=2&a=1` and `?a=1&b=2` are one page; the sort is stable, so repeats keep their order.
  kept.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  parsed.search = '';
  parsed.hash = '';
  const base = parsed.href;
  return {
    url: kept.length > 0 ? `${base}?${kept.map((k) => k.part).join('&')}` : base,
    utm,
    removedParameters,
  };
}
