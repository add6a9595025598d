import { DIMENSIONS } from '../event.js';
import { GRANULARITIES } from '../time.js';
import { STORE_REQUEST_CEILING } from './budget.js';
import { METRICS, ORDERS, QUERY_LIMITS } from './params.js';
import { CONTAINS_DIMENSIONS, FILTER_ERRORS, FILTER_LIMITS } from '../filters/grammar.js';

/** The OpenAPI 3.1 description of the query API; test/unit/api-handler.test.ts checks real answers against it. */

const isoDate = { type: 'string', format: 'date-time' } as const;
/** The metric fields an answer carries when `metrics` asks for them. */
const metricProperties = {
  visitors: {
    type: 'integer',
    minimum: 0,
    description: 'Distinct userId: exact up to 256, HyperLogLog (p = 14, standard error 0.81%) above.',
  },
  errors: { type: 'integer', minimum: 0, description: 'Page views with status 400 or above.' },
  errorRate: { type: ['number', 'null'], minimum: 0, maximum: 1, description: 'errors / page views.' },
} as const;
/** `filter=`: the grammar of shared/filters/grammar.ts, in words. */
const filterParameter = {
  name: 'filter',
  in: 'query',
  required: false,
  description:
    `Repeatable, ANDed (at most ${FILTER_LIMITS.maxFilters}). \`<dimension>:<value>\` is, \`<dimension>:<a>|<b>\` is any of ` +
    `(at most ${FILTER_LIMITS.maxValues} values), \`!<dimension>:<value>…\` is not, \`<dimension>~<text>\` contains ` +
    `(for ${CONTAINS_DIMENSIONS.join(', ')}). Dimensions: ${DIMENSIONS.join(', ')}; values as the breakdowns name them ` +
    '(`(none)` for no referrer or campaign, status as digits); `\\|` and `\\\\` escape a bar and a backslash. ' +
    'A malformed filter is a 400 invalid_filter with a reason.',
  style: 'form',
  explode: true,
  schema: {
    type: 'array',
    maxItems: FILTER_LIMITS.maxFilters,
    items: { type: 'string', pattern: `^!?(${DIMENSIONS.join('|')})[:~].+$` },
  },
  examples: {
    is: { value: ['country:DE'] },
    anyOf: { value: ['country:DE|AT|CH'] },
    not: { value: ['!browser:FF'] },
    contains: { value: ['url~/blog/'] },
  },
} as const;

/** The `site` parameter every query takes (docs/sites.md). */
const siteParameter = {
  name: 'site',
  in: 'query',
  required: false,
  description:
    'The site to count (GET /v1/sites lists them). Required when the caller can see more than one site ' +
    "(400 site_required); a site the API does not have is a 400 site_unknown; one the token's `sites` claim " +
    `does not name is a 403 site_forbidden. Nothing of one site is ever counted in another's answer.`,
  schema: { type: 'string', maxLength: 253 },
} as const;
const siteErrors = {
  '403': {
    description: "The token's `sites` claim does not name the site (site_forbidden)",
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  },
} as const;
const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: {
          type: 'string',
          enum: [
            'invalid_parameter',
            'invalid_filter',
            'range_in_future',
            'site_required',
            'site_unknown',
            'site_forbidden',
            'request_too_large',
            'not_found',
            'method_not_allowed',
            'internal',
          ],
        },
        parameter: { type: 'string' },
        reason: {
          type: 'string',
          enum: [...FILTER_ERRORS],
          description: 'With invalid_filter: what is wrong with the filter.',
        },
        parameters: {
          type: 'array',
          items: { type: 'string' },
          description: 'With request_too_large: every parameter whose narrowing lowers the cost.',
        },
        message: { type: 'string' },
      },
    },
  },
} as const;

export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'Page-view analytics API',
    version: '1.0.0',
    description:
      'Exact page-view counts merged from batch views (event time before the horizon H) and speed-layer counters (from H on).',
  },
  paths: {
    '/v1/pageviews': {
      get: {
        operationId: 'getPageViews',
        summary: 'Page views over [from, to) as a time series, optionally broken down by a dimension',
        description:
          `At most ${QUERY_LIMITS.maxBuckets} buckets per answer, and at most ${STORE_REQUEST_CEILING} store requests ` +
          '(DynamoDB queries and their pages, S3 reads) per request: twice the bucket cap and 100, enough for the ' +
          'totals and one breakdown of every bucket of the largest answer. A query whose plan needs more is refused ' +
          'before it reads anything, and one that reaches the ceiling while it runs is stopped there, both with a ' +
          '400 request_too_large naming the parameters to narrow.',
        parameters: [
          siteParameter,
          {
            name: 'from',
            in: 'query',
            required: true,
            description: 'Inclusive start: ISO-8601 with a zone, or epoch ms; on a granularity boundary.',
            schema: { type: 'string' },
          },
          {
            name: 'to',
            in: 'query',
            required: true,
            description: 'Exclusive end, like from.',
            schema: { type: 'string' },
          },
          {
            name: 'granularity',
            in: 'query',
            required: false,
            schema: { type: 'string', enum: [...GRANULARITIES], default: 'hour' },
          },
          { name: 'by', in: 'query', required: false, schema: { type: 'string', enum: [...DIMENSIONS] } },
          {
            name: 'top',
            in: 'query',
            required: false,
            description: 'With by: values kept; the rest are summed as `other`.',
            schema: {
              type: 'integer',
              minimum: 1,
              maximum: QUERY_LIMITS.maxTop,
              default: QUERY_LIMITS.defaultTop,
            },
          },
          {
            name: 'metrics',
            in: 'query',
            required: false,
            description:
              'Comma-separated; page views are always reported. visitors: distinct userId per bucket, over the range ' +
              'and per breakdown value (a union, never a sum); errors: status 400 or above; error_rate: errors / page views.',
            schema: { type: 'string', default: 'pageviews', examples: ['pageviews,visitors,error_rate'] },
          },
          {
            name: 'order',
            in: 'query',
            required: false,
            description: 'With by: how values are ranked (visitors also reports them).',
            schema: { type: 'string', enum: [...ORDERS], default: 'pageviews' },
          },
          filterParameter,
        ],
        responses: {
          '200': {
            description: 'Counts',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/PageViews' } } },
          },
          '400': {
            description:
              'A parameter is missing, malformed or out of bounds (invalid_parameter); a filter is malformed or names ' +
              'an unknown dimension (invalid_filter, with a reason); no site is named among ' +
              'several (site_required) or the site is unknown (site_unknown); `to` lies more than ' +
              `${QUERY_LIMITS.maxFutureMs / 3_600_000} hours after now (range_in_future); or the query would make more than ` +
              `${STORE_REQUEST_CEILING} store requests (request_too_large), with \`parameters\` naming what to narrow`,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
          },
          ...siteErrors,
        },
      },
    },
    '/v1/live': {
      get: {
        operationId: 'getLive',
        summary:
          'The last five minutes of a site from the speed layer: page views and visitors per minute and over the window, errors and the top pages',
        parameters: [siteParameter, filterParameter],
        responses: {
          '200': {
            description: 'Live view',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Live' } } },
          },
          '400': {
            description: 'site_required, site_unknown, or an unknown parameter (invalid_parameter)',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
          },
          ...siteErrors,
        },
      },
    },
    '/v1/sites': {
      get: {
        operationId: 'getSites',
        summary:
          'The sites the caller may query, with their first and last event: every counted page view of a site lies in [firstEvent, lastEvent)',
        description:
          'firstEvent is the start of the first hour with a page view in the batch views (before H), else of the first ' +
          'minute with a speed counter from H on; lastEvent is the end of the last such minute, else of the last batch ' +
          "hour. Both are null for a site without page views yet. With authMode=jwt, a token's `sites` claim narrows the list.",
        responses: {
          '200': {
            description: 'Sites',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Sites' } } },
          },
        },
      },
    },
    '/v1/status': {
      get: {
        operationId: 'getStatus',
        summary: 'Horizon, last batch run and speed-layer freshness',
        responses: {
          '200': {
            description: 'Status',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Status' } } },
          },
        },
      },
    },
    '/v1/openapi.json': {
      get: {
        operationId: 'getOpenApi',
        summary: 'This document',
        responses: { '200': { description: 'OpenAPI 3.1 document' } },
      },
    },
  },
  components: {
    schemas: {
      PageViews: {
        type: 'object',
        required: ['query', 'horizon', 'total', 'buckets'],
        properties: {
          query: {
            type: 'object',
            required: ['site', 'from', 'to', 'granularity'],
            properties: {
              site: { type: 'string' },
              from: isoDate,
              to: isoDate,
              granularity: { type: 'string', enum: [...GRANULARITIES] },
              by: { type: 'string', enum: [...DIMENSIONS] },
              top: { type: 'integer' },
              metrics: { type: 'array', items: { type: 'string', enum: [...METRICS] } },
              order: { type: 'string', enum: [...ORDERS] },
              filters: { type: 'array', items: { type: 'string' }, description: 'The filters, canonical.' },
            },
          },
          horizon: { type: ['string', 'null'], format: 'date-time' },
          total: { type: 'integer', minimum: 0 },
          ...metricProperties,
          buckets: {
            type: 'array',
            items: {
              type: 'object',
              required: ['start', 'end', 'source', 'count'],
              properties: {
                start: isoDate,
                end: isoDate,
                source: { type: 'string', enum: ['batch', 'speed', 'both'] },
                count: { type: 'integer', minimum: 0 },
                ...metricProperties,
              },
            },
          },
          breakdown: {
            type: 'array',
            items: {
              type: 'object',
              required: ['value', 'total', 'counts'],
              properties: {
                value: { type: 'string' },
                total: { type: 'integer', minimum: 0 },
                counts: { type: 'array', items: { type: 'integer', minimum: 0 } },
                ...metricProperties,
                visitors: {
                  type: ['integer', 'null'],
                  minimum: 0,
                  description: 'Over the range; null for `other`, whose visitors overlap the top values.',
                },
              },
            },
          },
        },
      },
      Live: {
        type: 'object',
        required: [
          'site',
          'from',
          'to',
          'pageviews',
          'visitors',
          'errors',
          'errorRate',
          'minutes',
          'topPages',
        ],
        properties: {
          site: { type: 'string' },
          filters: { type: 'array', items: { type: 'string' }, description: 'The filters, canonical.' },
          from: isoDate,
          to: isoDate,
          pageviews: { type: 'integer', minimum: 0 },
          visitors: metricProperties.visitors,
          errors: metricProperties.errors,
          errorRate: metricProperties.errorRate,
          minutes: {
            type: 'array',
            items: {
              type: 'object',
              required: ['start', 'count', 'visitors'],
              properties: {
                start: isoDate,
                count: { type: 'integer', minimum: 0 },
                visitors: { type: 'integer', minimum: 0 },
              },
            },
          },
          topPages: {
            type: 'array',
            items: {
              type: 'object',
              required: ['url', 'count'],
              properties: { url: { type: 'string' }, count: { type: 'integer', minimum: 1 } },
            },
          },
        },
      },
      Sites: {
        type: 'object',
        required: ['sites'],
        properties: {
          sites: {
            type: 'array',
            items: {
              type: 'object',
              required: ['site', 'default', 'firstEvent', 'lastEvent'],
              properties: {
                site: { type: 'string' },
                default: { type: 'boolean', description: 'Queries without site= answer for this site.' },
                firstEvent: { type: ['string', 'null'], format: 'date-time' },
                lastEvent: { type: ['string', 'null'], format: 'date-time' },
              },
            },
          },
        },
      },
      Status: {
        type: 'object',
        required: ['horizon', 'lastBatchRun', 'speed', 'versions'],
        properties: {
          horizon: { type: ['string', 'null'], format: 'date-time' },
          lastBatchRun: {
            type: ['object', 'null'],
            required: ['publishedAt', 'computedFrom', 'computedTo', 'version'],
            properties: {
              publishedAt: isoDate,
              computedFrom: isoDate,
              computedTo: isoDate,
              version: { type: 'string' },
            },
          },
          speed: {
            type: 'object',
            required: ['newestMinute', 'lagSeconds'],
            properties: {
              newestMinute: { type: ['string', 'null'], format: 'date-time' },
              lagSeconds: { type: ['number', 'null'] },
            },
          },
          versions: {
            type: 'object',
            required: ['api', 'schema'],
            properties: { api: { type: 'string' }, schema: { type: 'string' } },
          },
        },
      },
      Error: errorSchema,
    },
  },
} as const;
