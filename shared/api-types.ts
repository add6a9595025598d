import type { Dimension } from './event.js';
import type { Granularity } from './time.js';

/** JSON bodies of the HTTPS API (`/v1/...`); the dashboard and the serving layer share these types. */

/** Where a bucket's count came from: batch views before H, speed counters from H on, or both when it straddles H. */
export type BucketSource = 'batch' | 'speed' | 'both';

/** Metrics besides page views, present when asked for with `metrics=`. */
export interface MetricFields {
  /** Distinct visitors (userId), from mergeable sketches: exact up to 256, within ~0.8% (one standard error) above. */
  readonly visitors?: number;
  /** Page views with status 400 or above. */
  readonly errors?: number;
  /** errors / page views; null when there are no page views. */
  readonly errorRate?: number | null;
}

export interface PageViewsResponse extends MetricFields {
  readonly query: {
    /** The site counted: every answer is of one site. */
    readonly site: string;
    readonly from: string;
    readonly to: string;
    readonly granularity: Granularity;
    readonly by?: Dimension;
    readonly top?: number;
    /** Present when other metrics than page views were asked for. */
    readonly metrics?: readonly string[];
    readonly order?: 'pageviews' | 'visitors';
    /** The filters, in canonical form (docs/filters.md), when the query had any. */
    readonly filters?: readonly string[];
  };
  /** The horizon H used for this answer (ISO-8601), or null before the first batch run. */
  readonly horizon: string | null;
  readonly total: number;
  /** One entry per bucket intersecting [from, to), in time order. */
  readonly buckets: ReadonlyArray<
    {
      readonly start: string;
      readonly end: string;
      readonly source: BucketSource;
      readonly count: number;
    } & MetricFields
  >;
  /** With `by`: values ordered by total descending; past `top`, the rest summed as value `other`. */
  readonly breakdown?: ReadonlyArray<
    {
      readonly value: string;
      readonly total: number;
      /** Aligned with `buckets`. */
      readonly counts: readonly number[];
    } & Omit<MetricFields, 'visitors'> & {
        /** Over the range; null for `other`, whose visitors cannot be told apart from the top values'. */
        readonly visitors?: number | null;
      }
  >;
}

/** GET /v1/live: the last five minutes, from the speed layer. */
export interface LiveResponse {
  readonly site: string;
  /** The filters, in canonical form, when the request had any. */
  readonly filters?: readonly string[];
  readonly from: string;
  readonly to: string;
  readonly pageviews: number;
  /** Distinct visitors over the whole window (a union, not the sum of the minutes'). */
  readonly visitors: number;
  readonly errors: number;
  readonly errorRate: number | null;
  readonly minutes: ReadonlyArray<{
    readonly start: string;
    readonly count: number;
    readonly visitors: number;
  }>;
  readonly topPages: ReadonlyArray<{ readonly url: string; readonly count: number }>;
}

/** GET /v1/sites: the sites the caller may query, with the span of their page views (docs/sites.md). */
export interface SitesResponse {
  readonly sites: ReadonlyArray<{
    readonly site: string;
    /** Whether queries without `site=` answer for this site (the only one the caller can see). */
    readonly default: boolean;
    /**
     * Start of the first bucket known to hold a page view of the site (an hour of the batch views, else a minute
     * of the speed counters), or null when neither layer has any.
     */
    readonly firstEvent: string | null;
    /** End of the last bucket known to hold one (a minute of the speed counters, else an hour of the batch views). */
    readonly lastEvent: string | null;
  }>;
}

export interface StatusResponse {
  readonly horizon: string | null;
  readonly lastBatchRun: {
    readonly publishedAt: string;
    readonly computedFrom: string;
    readonly computedTo: string;
    readonly version: string;
  } | null;
  readonly speed: {
    /** Start of the newest minute with a counter, or null. */
    readonly newestMinute: string | null;
    readonly lagSeconds: number | null;
  };
  readonly versions: { readonly api: string; readonly schema: string };
}

export interface ErrorResponse {
  readonly error: {
    /** e.g. `invalid_parameter`, `range_in_future`, `request_too_large`, `not_found`. */
    readonly code: string;
    /** The query parameter at fault, when there is one. */
    readonly parameter?: string;
    /** For `invalid_filter`: what is wrong with the filter, e.g. `filter_unknown_dimension` (docs/filters.md). */
    readonly reason?: string;
    /** For `request_too_large`: every parameter whose narrowing lowers the request's cost. */
    readonly parameters?: readonly string[];
    readonly message: string;
  };
}
