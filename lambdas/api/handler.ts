import { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { ErrorResponse, StatusResponse } from '../../shared/api-types.js';
import { awsClients } from '../../shared/aws-clients.js';
import { runAs } from '../../shared/call-ledger.js';
import type { BatchViewReader, CountRow, SpeedCountReader } from '../../shared/counts.js';
import { configFromEnvironment, DEFAULT_SETTINGS, stackSites } from '../../shared/resources.js';
import { toIso } from '../../shared/time.js';
import { answerLive } from '../../shared/serving/live.js';
import { answerPageViews } from '../../shared/serving/merge.js';
import { OPENAPI_DOCUMENT } from '../../shared/serving/openapi.js';
import {
  metering,
  narrowable,
  plannedStoreRequests,
  RequestTooLargeError,
  STORE_REQUEST_CEILING,
  StoreRequestMeter,
} from '../../shared/serving/budget.js';
import {
  filterValues,
  minuteFloor,
  ParameterError,
  parseFilterParameters,
  parsePageViewsQuery,
  resolveSite,
  SiteForbiddenError,
  visibleSites,
  type SiteScope,
} from '../../shared/serving/params.js';
import type { FilteredReaders } from '../../shared/serving/filtered.js';
import { answerSites, siteClaim } from '../../shared/serving/sites.js';
import { allLimited } from '../../shared/concurrency.js';
import { readersFor } from '../../shared/serving/readers.js';

/** API Gateway HTTP API (payload v2) → the query API. Thin adapter over params.ts and merge.ts. */

export const API_VERSION = OPENAPI_DOCUMENT.info.version;
export const SCHEMA_VERSION = '1';

export interface ApiHandlerDeps {
  readonly speed: SpeedCountReader;
  readonly batch: BatchViewReader;
  /** Both layers' record blocks, for `filter=` (docs/filters.md). */
  readonly filtered?: FilteredReaders;
  readonly retentionHours: number;
  /** The stack's sites, its default site first (shared/resources.ts stackSites). @default ['default'] */
  readonly sites?: readonly string[];
  readonly clock?: () => number;
  readonly onError?: (error: unknown) => void;
  /**
   * Called once per request with what it cost the stores (readers built by `readersFor` count their requests
   * into it; budget.ts): the Lambda logs it.
   */
  readonly onAnswered?: (request: AnsweredRequest) => void;
}

export interface AnsweredRequest {
  readonly path: string;
  readonly statusCode: number;
  readonly storeRequests: number;
  readonly query: Readonly<Record<string, string | undefined>>;
}

export type ApiHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

const json = (statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 => ({
  statusCode,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  body: JSON.stringify(body),
});

const error = (
  statusCode: number,
  code: string,
  message: string,
  parameter?: string,
  parameters?: readonly string[],
  reason?: string,
) =>
  json(statusCode, {
    error: {
      code,
      message,
      ...(parameter ? { parameter } : {}),
      ...(reason ? { reason } : {}),
      ...(parameters ? { parameters } : {}),
    },
  } satisfies ErrorResponse);

export function createApiHandler(deps: ApiHandlerDeps): ApiHandler {
  const clock = deps.clock ?? Date.now;
  const batchCache = new Map<string, CountRow[]>();
  const stack = deps.sites ?? [DEFAULT_SETTINGS.defaultSite];
  /** The sites a request may query: the token's sites claim, when it carries one, narrows the stack's. */
  const scopeOf = (event: APIGatewayProxyEventV2): SiteScope => {
    const claims = (event.requestContext as { authorizer?: { jwt?: { claims?: Record<string, unknown> } } })
      ?.authorizer?.jwt?.claims;
    const allowed = siteClaim(claims);
    return allowed ? { stack, allowed } : { stack };
  };

  /** The newest minute of the sites the caller may see. */
  async function newestMinute(scope: SiteScope): Promise<number | undefined> {
    let newest: number | undefined;
    await allLimited(visibleSites(scope), 4, async (site) => {
      const minute = await deps.speed.newestMinute(site);
      if (minute !== undefined && (newest === undefined || minute > newest)) newest = minute;
    });
    return newest;
  }

  async function status(scope: SiteScope): Promise<StatusResponse> {
    const [horizon, newest] = await Promise.all([deps.batch.readHorizon(), newestMinute(scope)]);
    return {
      horizon: horizon ? toIso(horizon.horizonMs) : null,
      lastBatchRun: horizon
        ? {
            publishedAt: toIso(horizon.publishedAtMs),
            computedFrom: toIso(horizon.computedFromMs),
            computedTo: toIso(horizon.computedToMs),
            version: horizon.version,
          }
        : null,
      speed: {
        newestMinute: newest === undefined ? null : toIso(newest),
        lagSeconds: newest === undefined ? null : Math.max(0, Math.round((clock() - newest - 60_000) / 1000)),
      },
      versions: { api: API_VERSION, schema: SCHEMA_VERSION },
    };
  }

  async function pageViews(
    params: Readonly<Record<string, string | undefined>>,
    scope: SiteScope,
    filters: readonly string[],
  ) {
    const now = clock();
    const query = parsePageViewsQuery(params, minuteFloor(now, deps.retentionHours), now, scope, filters);
    const horizon = await deps.batch.readHorizon();
    const planned = plannedStoreRequests(query, horizon);
    if (planned > STORE_REQUEST_CEILING) throw new RequestTooLargeError(planned, narrowable(query));
    return answerPageViews(
      {
        speed: deps.speed,
        batch: deps.batch,
        batchCache,
        ...(deps.filtered ? { filtered: deps.filtered } : {}),
      },
      query,
      horizon ?? null,
    );
  }

  async function live(
    params: Readonly<Record<string, string | undefined>>,
    scope: SiteScope,
    filters: readonly string[],
  ) {
    const unknown = Object.keys(params).find((name) => name !== 'site' && name !== 'filter');
    if (unknown) throw new ParameterError(unknown, `unknown parameter ${unknown}; allowed: site, filter`);
    const site = resolveSite(params.site, scope);
    return answerLive(deps.speed, site, clock(), parseFilterParameters(filters), deps.filtered);
  }

  return (event) =>
    runAs('api', async () => {
      const path = event.rawPath ?? '/';
      const query = event.queryStringParameters ?? {};
      const meter = new StoreRequestMeter(() => {
        try {
          return narrowable(
            parsePageViewsQuery(
              query,
              minuteFloor(clock(), deps.retentionHours),
              clock(),
              scopeOf(event),
              filterValues(event.rawQueryString, query),
            ),
          );
        } catch {
          return ['from', 'to'];
        }
      });
      const result = await metering(meter, () => answer(event));
      deps.onAnswered?.({ path, statusCode: result.statusCode ?? 200, storeRequests: meter.count, query });
      return result;
    });

  async function answer(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
    const method = event.requestContext?.http?.method ?? 'GET';
    const path = event.rawPath ?? '/';
    try {
      if (!['/v1/pageviews', '/v1/live', '/v1/sites', '/v1/status', '/v1/openapi.json'].includes(path)) {
        return error(404, 'not_found', `no route for ${path}; see /v1/openapi.json`);
      }
      if (method !== 'GET') return error(405, 'method_not_allowed', `${path} answers GET only`);
      if (path === '/v1/openapi.json') return json(200, OPENAPI_DOCUMENT);
      const scope = scopeOf(event);
      const params = event.queryStringParameters ?? {};
      const filters = filterValues(event.rawQueryString, params);
      if (path === '/v1/status') return json(200, await status(scope));
      if (path === '/v1/sites') return json(200, await answerSites(deps, scope, clock()));
      if (path === '/v1/live') return json(200, await live(params, scope, filters));
      return json(200, await pageViews(params, scope, filters));
    } catch (caught) {
      if (caught instanceof ParameterError)
        return error(400, caught.code, caught.message, caught.parameter, undefined, caught.reason);
      // Authorization, not syntax: the request is well formed and the token does not allow it (RFC 9110 §15.5.4).
      if (caught instanceof SiteForbiddenError) return error(403, 'site_forbidden', caught.message, 'site');
      if (caught instanceof RequestTooLargeError)
        return error(400, 'request_too_large', caught.message, caught.parameters[0], caught.parameters);
      deps.onError?.(caught);
      return error(500, 'internal', 'internal error; see the function logs');
    }
  }
}

const logger = new Logger({ serviceName: 'api' });
let handle: ApiHandler | undefined;

export const handler = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
  if (!handle) {
    const config = configFromEnvironment();
    handle = createApiHandler({
      ...readersFor(awsClients(), config),
      retentionHours: config.settings.speedRetentionHours,
      sites: stackSites(config.settings),
      onError: (caught) => logger.error('request failed', caught as Error),
      onAnswered: (request) => logger.info('answered', { ...request }),
    });
  }
  return handle(event);
};
