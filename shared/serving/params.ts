import { DIMENSIONS, isDimension, type Dimension } from '../event.js';
import { FilterError, parseFilters, type Filter } from '../filters/grammar.js';
import { DEFAULT_SETTINGS } from '../resources.js';
import {
  GRANULARITIES,
  GRANULARITY_MS,
  HOUR_MS,
  isAligned,
  isGranularity,
  type Granularity,
} from '../time.js';

/** Query parameters of GET /v1/pageviews, validated; every rejection names the parameter. */

export const QUERY_LIMITS = {
  /** Most buckets one answer holds. */
  maxBuckets: 1500,
  maxTop: 100,
  defaultTop: 10,
  /** Minute buckets come from the speed layer's minute counters, which live this long (minus a margin). */
  minuteMarginHours: 1,
  /** `to` may lie at most this far after now: nothing is counted later than 15 minutes ahead. */
  maxFutureMs: 24 * HOUR_MS,
} as const;

/** What an answer can report for each bucket, the range and each breakdown value. */
export const METRICS = ['pageviews', 'visitors', 'errors', 'error_rate'] as const;
export type Metric = (typeof METRICS)[number];
export const ORDERS = ['pageviews', 'visitors'] as const;
export type Order = (typeof ORDERS)[number];

export type PageViewsQuery = {
  /** The one site the answer counts (docs/sites.md). */
  readonly site: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly granularity: Granularity;
  /** Always holds `pageviews`; the default answer is page views only, as before metrics existed. */
  readonly metrics: readonly Metric[];
  /** How a breakdown ranks its values. @default 'pageviews' */
  readonly order: Order;
  /** `filter=` values, ANDed (shared/filters/grammar.ts); empty: every page view. */
  readonly filters: readonly Filter[];
} & (
  | { readonly by?: undefined; readonly top?: undefined }
  /** A breakdown always has a top: the one asked for, or the default. */
  | { readonly by: Dimension; readonly top: number }
);

export class ParameterError extends Error {
  override readonly name = 'ParameterError';
  constructor(
    readonly parameter: string,
    message: string,
    /** The error code of the answer. */
    readonly code:
      | 'invalid_parameter'
      | 'invalid_filter'
      | 'range_in_future'
      | 'site_required'
      | 'site_unknown' = 'invalid_parameter',
    /** For `invalid_filter`: what is wrong with it (shared/filters/grammar.ts FILTER_ERRORS). */
    readonly reason?: string,
  ) {
    super(message);
  }
}

/** A caller asked for a site its token does not allow (a 403, docs/sites.md). */
export class SiteForbiddenError extends Error {
  override readonly name = 'SiteForbiddenError';
}

/**
 * The sites a caller may query: the stack's (its default site first, then Settings.sites), and, when the caller's
 * token carries the sites claim, only those of them it names.
 */
export interface SiteScope {
  readonly stack: readonly string[];
  /** Absent: every site of the stack. */
  readonly allowed?: ReadonlySet<string>;
}

export const DEFAULT_SITE_SCOPE: SiteScope = { stack: [DEFAULT_SETTINGS.defaultSite] };

/** The stack's sites the caller may see, in the stack's order. */
export const visibleSites = (scope: SiteScope): string[] =>
  scope.stack.filter((site) => !scope.allowed || scope.allowed.has(site));

/**
 * The site of a query. Without `site=`, the one site the caller can see, if there is one; else a 400
 * `site_required`. A site the caller's token does not name is a 403, whether the stack has it or not, so that a
 * token learns nothing of sites it may not see; a site the stack does not have is a 400 `site_unknown`.
 */
export function resolveSite(raw: string | undefined, scope: SiteScope): string {
  const visible = visibleSites(scope);
  if (raw === undefined || raw === '') {
    if (visible.length === 1) return visible[0]!;
    if (visible.length === 0) throw new SiteForbiddenError('the token allows none of the sites this API has');
    throw new ParameterError(
      'site',
      `site is required: this API has ${visible.length} sites (GET /v1/sites lists them)`,
      'site_required',
    );
  }
  if (scope.allowed && !scope.allowed.has(raw)) {
    throw new SiteForbiddenError(`the token does not allow site ${JSON.stringify(raw.slice(0, 253))}`);
  }
  if (!scope.stack.includes(raw)) {
    throw new ParameterError(
      'site',
      `unknown site ${JSON.stringify(raw.slice(0, 253))}; GET /v1/sites lists the sites`,
      'site_unknown',
    );
  }
  return raw;
}

const ALLOWED = ['site', 'from', 'to', 'granularity', 'by', 'top', 'metrics', 'order', 'filter'] as const;

/**
 * The `filter=` values of a request. API Gateway's payload 2.0 joins a repeated parameter's values with commas in
 * `queryStringParameters` ("Create AWS Lambda proxy integrations for HTTP APIs", payload format differences), and
 * a value may hold a comma itself, so the filters come from `rawQueryString`, which keeps every occurrence.
 */
export function filterValues(
  rawQueryString: string | undefined,
  params: Readonly<Record<string, string | undefined>>,
): string[] {
  if (rawQueryString !== undefined) return new URLSearchParams(rawQueryString).getAll('filter');
  return params.filter === undefined ? [] : [params.filter];
}

/** Parses the filters, as a ParameterError that names `filter` and the reason. */
export function parseFilterParameters(raws: readonly string[]): Filter[] {
  try {
    return parseFilters(raws);
  } catch (error) {
    if (error instanceof FilterError)
      throw new ParameterError('filter', error.message, 'invalid_filter', error.reason);
    throw error;
  }
}
const ISO_PATTERN = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;

function instant(parameter: string, raw: string | undefined): number {
  if (raw === undefined || raw === '')
    throw new ParameterError(parameter, `${parameter} is required (ISO-8601 UTC or epoch ms)`);
  if (/^\d{1,15}$/.test(raw)) return Number(raw);
  if (!ISO_PATTERN.test(raw)) {
    throw new ParameterError(
      parameter,
      `${parameter} must be ISO-8601 with a zone (e.g. 2026-11-25T10:00:00Z) or epoch ms`,
    );
  }
  const ms = Date.parse(raw);
  if (!Number.isFinite(ms)) throw new ParameterError(parameter, `${parameter} is not a valid date: ${raw}`);
  return ms;
}

/**
 * Parses and checks a /v1/pageviews query.
 * @param minuteFloorMs the oldest instant minute data exists for (now minus the speed retention).
 * @param nowMs the clock: `to` may lie at most `QUERY_LIMITS.maxFutureMs` after it.
 * @param sites the sites the caller may query (resolveSite).
 */
export function parsePageViewsQuery(
  params: Readonly<Record<string, string | undefined>>,
  minuteFloorMs: number,
  nowMs = Date.now(),
  sites: SiteScope = DEFAULT_SITE_SCOPE,
  /** Every `filter=` value (filterValues); without it, `params.filter` is the one filter. */
  filterRaws: readonly string[] = params.filter === undefined ? [] : [params.filter],
): PageViewsQuery {
  for (const name of Object.keys(params)) {
    if (!(ALLOWED as readonly string[]).includes(name)) {
      throw new ParameterError(name, `unknown parameter ${name}; allowed: ${ALLOWED.join(', ')}`);
    }
  }
  const site = resolveSite(params.site, sites);
  const granularity = params.granularity ?? 'hour';
  if (!isGranularity(granularity)) {
    throw new ParameterError('granularity', `granularity must be one of ${GRANULARITIES.join(', ')}`);
  }
  const fromMs = instant('from', params.from);
  const toMs = instant('to', params.to);
  if (fromMs >= toMs) throw new ParameterError('from', 'from must be before to (the range is [from, to))');
  for (const [name, ms] of [
    ['from', fromMs],
    ['to', toMs],
  ] as const) {
    if (!isAligned(ms, granularity)) {
      throw new ParameterError(
        name,
        `${name} must fall on a ${granularity} boundary (UTC) for granularity=${granularity}`,
      );
    }
  }
  if (toMs > nowMs + QUERY_LIMITS.maxFutureMs) {
    // Every hour after now would still cost a store request and count nothing (a far-future range made tens of
    // thousands of DynamoDB queries).
    throw new ParameterError(
      'to',
      `to must be at most ${QUERY_LIMITS.maxFutureMs / HOUR_MS} hours after now (${new Date(nowMs).toISOString()}); nothing is counted later`,
      'range_in_future',
    );
  }
  const buckets = (toMs - fromMs) / GRANULARITY_MS[granularity];
  if (buckets > QUERY_LIMITS.maxBuckets) {
    throw new ParameterError(
      'to',
      `the range holds ${buckets} ${granularity} buckets; at most ${QUERY_LIMITS.maxBuckets} are allowed: narrow it or use a coarser granularity`,
    );
  }
  if (granularity === 'minute' && fromMs < minuteFloorMs) {
    throw new ParameterError(
      'granularity',
      `minute data exists only from ${new Date(minuteFloorMs).toISOString()} on (the speed retention window); this range allows granularity=hour or granularity=day`,
    );
  }
  let by: Dimension | undefined;
  if (params.by !== undefined) {
    if (!isDimension(params.by)) throw new ParameterError('by', `by must be one of ${DIMENSIONS.join(', ')}`);
    by = params.by;
  }
  if (params.top !== undefined) {
    if (!by) throw new ParameterError('top', 'top needs by');
    if (!/^\d+$/.test(params.top) || Number(params.top) < 1 || Number(params.top) > QUERY_LIMITS.maxTop) {
      throw new ParameterError('top', `top must be a whole number from 1 to ${QUERY_LIMITS.maxTop}`);
    }
  }
  const breakdown = by
    ? { by, top: params.top === undefined ? QUERY_LIMITS.defaultTop : Number(params.top) }
    : {};
  const metrics = new Set<Metric>(['pageviews']);
  if (params.metrics !== undefined) {
    for (const name of params.metrics.split(',')) {
      if (!(METRICS as readonly string[]).includes(name)) {
        throw new ParameterError(
          'metrics',
          `metrics is a comma-separated list of ${METRICS.join(', ')}; got "${name}"`,
        );
      }
      metrics.add(name as Metric);
    }
  }
  let order: Order = 'pageviews';
  if (params.order !== undefined) {
    if (!by) throw new ParameterError('order', 'order needs by');
    if (!(ORDERS as readonly string[]).includes(params.order)) {
      throw new ParameterError('order', `order must be one of ${ORDERS.join(', ')}`);
    }
    order = params.order as Order;
    // Ranking by visitors reports them.
    if (order === 'visitors') metrics.add('visitors');
  }
  return {
    site,
    fromMs,
    toMs,
    granularity,
    ...breakdown,
    metrics: METRICS.filter((m) => metrics.has(m)),
    order,
    filters: parseFilterParameters(filterRaws),
  };
}

/** The oldest instant with minute data: the speed retention minus a margin, on an hour boundary. */
export function minuteFloor(nowMs: number, retentionHours: number): number {
  return Math.ceil((nowMs - (retentionHours - QUERY_LIMITS.minuteMarginHours) * HOUR_MS) / HOUR_MS) * HOUR_MS;
}
