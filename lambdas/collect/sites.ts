/**
 * The sites a collector takes page views for. An entry is a host name (`example.com`, `127.0.0.1`) or
 * `*.example.com` for every subdomain of example.com (not example.com itself). Requests from a browser carry an
 * `Origin`, which must be an allowed site; every event's url host must be one too, so a page cannot count views
 * for someone else's site.
 */

const ENTRY = /^(\*\.)?([a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/;

export class SiteListError extends Error {
  override readonly name = 'SiteListError';
}

export class SiteAllowList {
  private readonly hosts: ReadonlySet<string>;
  private readonly suffixes: readonly string[];

  constructor(readonly entries: readonly string[]) {
    const bad = entries.filter((entry) => !ENTRY.test(entry));
    if (bad.length > 0) {
      throw new SiteListError(
        `not a host name or *.domain: ${bad.map((b) => JSON.stringify(b)).join(', ')} (lower case, no scheme or port)`,
      );
    }
    this.hosts = new Set(entries.filter((e) => !e.startsWith('*.')));
    this.suffixes = entries.filter((e) => e.startsWith('*.')).map((e) => e.slice(1));
  }

  /** Parses a comma-separated list, e.g. the `COLLECTOR_SITES` variable. */
  static parse(text: string): SiteAllowList {
    return new SiteAllowList(
      text
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean),
    );
  }

  allowsHost(hostname: string): boolean {
    const host = hostname.toLowerCase();
    return this.hosts.has(host) || this.suffixes.some((suffix) => host.endsWith(suffix));
  }

  /** An `Origin` header value: `http(s)://host[:port]`. `null` (sandboxed frames, file://) is never allowed. */
  allowsOrigin(origin: string): boolean {
    const host = hostOf(origin);
    return host !== undefined && this.allowsHost(host);
  }
}

/** The host name of an http(s) URL, or undefined when it is not one. */
export function hostOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.hostname : undefined;
  } catch {
    return undefined;
  }
}
