import type { SitesResponse } from '../api-types.js';
import type { BatchViewReader, SpeedCountReader } from '../counts.js';
import { allLimited } from '../concurrency.js';
import { floorTo, HOUR_MS, MINUTE_MS, toIso } from '../time.js';
import { visibleSites, type SiteScope } from './params.js';

/**
 * GET /v1/sites and the JWT claim that restricts a caller to some sites (docs/sites.md).
 */

/** The token claim naming the sites a caller may query; a token without it may query every site. */
export const SITES_CLAIM = 'sites';

/**
 * The sites a token's claim names, or undefined when it has no such claim. API Gateway hands a Lambda the claims
 * of a validated JWT in `requestContext.authorizer.jwt.claims`; an HTTP API's payload 2.0 has carried an array
 * claim as a JSON array, as JSON text and as the bracketed `[a b]` form, so each is read, as is a plain
 * space- or comma-separated string (an OAuth scope-like claim).
 */
export function siteClaim(
  claims: Readonly<Record<string, unknown>> | undefined,
): ReadonlySet<string> | undefined {
  const claim = claims?.[SITES_CLAIM];
  if (claim === undefined || claim === null) return undefined;
  let values: unknown[];
  if (Array.isArray(claim)) values = claim;
  else if (typeof claim === 'string') {
    const text = claim.trim();
    let parsed: unknown;
    try {
      parsed = text.startsWith('["') ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    values = Array.isArray(parsed)
      ? parsed
      : text
          .replace(/^\[|\]$/g, '')
          .split(/[\s,]+/)
          .filter(Boolean);
  } else values = [];
  // A claim of any other shape allows nothing: a restriction that cannot be read must not become none.
  return new Set(values.filter((v): v is string => typeof v === 'string'));
}

export interface SitesDeps {
  readonly speed: SpeedCountReader;
  readonly batch: BatchViewReader;
  readonly retentionHours: number;
}

/**
 * Each site the caller may see, with its first and last event:
 * - first: the start of the first hour with a page view of the site in the batch views (before H), else of the
 *   first minute with a speed counter of it from H on;
 * - last: the end of the last minute with a speed counter of it from H on, else of the last batch hour before H.
 * So every counted page view of the site lies in [first, last), to the hour or the minute. The speed counters
 * are searched from H (or the retention's start) to now, one single-item Query per hour and end.
 */
export async function answerSites(deps: SitesDeps, scope: SiteScope, nowMs: number): Promise<SitesResponse> {
  const sites = visibleSites(scope);
  const [horizon, spans] = await Promise.all([deps.batch.readHorizon(), deps.batch.siteSpans()]);
  const h = horizon?.horizonMs ?? Number.NEGATIVE_INFINITY;
  const fromMs = Math.max(h, floorTo(nowMs - deps.retentionHours * HOUR_MS, 'hour') + HOUR_MS);
  const toMs = floorTo(nowMs, 'hour') + HOUR_MS;
  const spanOf = new Map(spans.map((span) => [span.site, span]));
  const answers = new Map<string, SitesResponse['sites'][number]>();
  await allLimited(sites, 4, async (site) => {
    const span = spanOf.get(site);
    const batch =
      span && span.firstHourMs < h
        ? { firstMs: span.firstHourMs, endMs: Math.min(span.lastHourMs + HOUR_MS, h) }
        : undefined;
    const speed = fromMs < toMs ? await deps.speed.minuteSpan(site, fromMs, toMs) : undefined;
    const first = batch?.firstMs ?? speed?.firstMs;
    const last = speed ? speed.lastMs + MINUTE_MS : batch?.endMs;
    answers.set(site, {
      site,
      default: sites.length === 1,
      firstEvent: first === undefined ? null : toIso(first),
      lastEvent: last === undefined ? null : toIso(last),
    });
  });
  return { sites: sites.map((site) => answers.get(site)!) };
}
