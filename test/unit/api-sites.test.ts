import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createApiHandler } from '../../lambdas/api/handler.js';
import { OPENAPI_DOCUMENT } from '../../shared/serving/openapi.js';
import { siteClaim } from '../../shared/serving/sites.js';
import type {
  ErrorResponse,
  LiveResponse,
  PageViewsResponse,
  SitesResponse,
} from '../../shared/api-types.js';
import type { PageView } from '../../shared/event.js';
import { generatedSites, PageViewGenerator } from '../../traffic/generator.js';
import { DAY_MS, HOUR_MS, hourBucket, MINUTE_MS, minuteBucket, toIso } from '../../shared/time.js';
import { apiEvent } from '../../local/api-events.js';
import { schemaErrors } from '../support/json-schema.js';
import { memoryBatchReader, memorySpeedReader } from '../support/memory-readers.js';

const NOW = Date.UTC(2026, 10, 25, 15, 20);
const H = Date.UTC(2026, 10, 25, 13);
const NAMED = generatedSites(3);
/** The default site has no events: it is listed with no first or last event. */
const SITES = ['default', ...NAMED];
const events: PageView[] = [
  ...new PageViewGenerator({ seed: 5, startMs: NOW - 2 * DAY_MS, rate: 1 / 60, sites: NAMED }).take(
    2 * 24 * 60 + 15,
  ),
].map((r) => r.event!);

const handler = (sites: readonly string[] = SITES) =>
  createApiHandler({
    speed: memorySpeedReader(events),
    batch: memoryBatchReader(
      events.filter((e) => e.created < H),
      H,
    ),
    retentionHours: 48,
    sites,
    clock: () => NOW,
  });

/** A request as API Gateway hands it on after its JWT authorizer validated the token. */
const withClaims = (event: APIGatewayProxyEventV2, claims: Record<string, unknown>) => ({
  ...event,
  requestContext: { ...event.requestContext, authorizer: { jwt: { claims, scopes: null } } },
});

async function get<T>(
  path: string,
  query: Record<string, string> = {},
  options: { claims?: Record<string, unknown>; sites?: readonly string[] } = {},
): Promise<{ status: number; body: T }> {
  const event = apiEvent(path, query);
  const result = await handler(options.sites)(options.claims ? withClaims(event, options.claims) : event);
  return { status: result.statusCode!, body: JSON.parse(result.body!) as T };
}

const range = { from: toIso(H - 6 * HOUR_MS), to: toIso(H + 2 * HOUR_MS) };
const schema = (name: string) => OPENAPI_DOCUMENT.components.schemas[name as 'Sites'];

describe('the site parameter', () => {
  it('scopes every answer to one site: each counts its own events, and the sites add up to all', async () => {
    let sum = 0;
    for (const site of NAMED) {
      const { status, body } = await get<PageViewsResponse>('/v1/pageviews', { ...range, site });
      expect(status).toBe(200);
      expect(body.query.site).toBe(site);
      const own = events.filter(
        (e) => e.site === site && e.created >= Date.parse(range.from) && e.created < Date.parse(range.to),
      );
      expect(body.total).toBe(own.length);
      sum += body.total;
    }
    const inRange = events.filter(
      (e) => e.created >= Date.parse(range.from) && e.created < Date.parse(range.to),
    );
    expect(sum).toBe(inRange.length);
    expect(NAMED.every((site) => inRange.some((e) => e.site === site))).toBe(true);
  });

  it('is required when there are several sites, and a missing or unknown one is a named 400', async () => {
    for (const path of ['/v1/pageviews', '/v1/live']) {
      const query = path === '/v1/live' ? {} : range;
      const missing = await get<ErrorResponse>(path, query);
      expect([missing.status, missing.body.error.code, missing.body.error.parameter]).toEqual([
        400,
        'site_required',
        'site',
      ]);
      const unknown = await get<ErrorResponse>(path, { ...query, site: 'elsewhere.example' });
      expect([unknown.status, unknown.body.error.code]).toEqual([400, 'site_unknown']);
      expect(schemaErrors(schema('Error'), unknown.body, OPENAPI_DOCUMENT)).toEqual([]);
    }
  });

  it('defaults to the one site when there is only one', async () => {
    const { status, body } = await get<PageViewsResponse>('/v1/pageviews', range, { sites: ['default'] });
    expect([status, body.query.site, body.total]).toEqual([200, 'default', 0]);
    const live = await get<LiveResponse>('/v1/live', { site: NAMED[0]! });
    expect(live.status).toBe(200);
    expect(live.body.site).toBe(NAMED[0]);
    expect(schemaErrors(schema('Live'), live.body, OPENAPI_DOCUMENT)).toEqual([]);
  });
});

describe('GET /v1/sites', () => {
  it('lists every site with the start of its first bucket and the end of its last', async () => {
    const { status, body } = await get<SitesResponse>('/v1/sites');
    expect(status).toBe(200);
    expect(schemaErrors(schema('Sites'), body, OPENAPI_DOCUMENT)).toEqual([]);
    const expected = SITES.map((site) => {
      const own = events.filter((e) => e.site === site).map((e) => e.created);
      if (own.length === 0) return { site, default: false, firstEvent: null, lastEvent: null };
      // The first event's batch hour (it lies before H); the last event's speed minute (after H).
      return {
        site,
        default: false,
        firstEvent: toIso(hourBucket(Math.min(...own))),
        lastEvent: toIso(minuteBucket(Math.max(...own)) + MINUTE_MS),
      };
    });
    expect(body.sites).toEqual(expected);
    expect(Math.max(...events.map((e) => e.created))).toBeGreaterThan(H);
  });
});

describe('the JWT sites claim', () => {
  const claims = { sub: 'analyst', sites: [NAMED[1]!] };

  it('answers a site the claim names, and the only one it names without site=', async () => {
    const named = await get<PageViewsResponse>('/v1/pageviews', { ...range, site: NAMED[1]! }, { claims });
    expect(named.status).toBe(200);
    const implied = await get<PageViewsResponse>('/v1/pageviews', range, { claims });
    expect([implied.status, implied.body.query.site, implied.body.total]).toEqual([
      200,
      NAMED[1],
      named.body.total,
    ]);
  });

  it("refuses any other site with a 403, known or not, so that a token learns nothing of others' sites", async () => {
    for (const site of [NAMED[0]!, 'default', 'elsewhere.example']) {
      for (const path of ['/v1/pageviews', '/v1/live']) {
        const { status, body } = await get<ErrorResponse>(
          path,
          { ...(path === '/v1/live' ? {} : range), site },
          {
            claims,
          },
        );
        expect([status, body.error.code, body.error.parameter]).toEqual([403, 'site_forbidden', 'site']);
        expect(schemaErrors(schema('Error'), body, OPENAPI_DOCUMENT)).toEqual([]);
      }
    }
  });

  it('lists only the sites the claim names', async () => {
    const { body } = await get<SitesResponse>('/v1/sites', {}, { claims: { sites: NAMED.slice(0, 2) } });
    expect(body.sites.map((s) => s.site)).toEqual(NAMED.slice(0, 2));
    const one = await get<SitesResponse>('/v1/sites', {}, { claims });
    expect(one.body.sites.map((s) => [s.site, s.default])).toEqual([[NAMED[1], true]]);
    const none = await get<SitesResponse>('/v1/sites', {}, { claims: { sites: [] } });
    expect(none.body.sites).toEqual([]);
    expect((await get<ErrorResponse>('/v1/pageviews', range, { claims: { sites: [] } })).status).toBe(403);
  });

  it('reads the claim as API Gateway may carry it; a token without it sees every site', () => {
    const expected = new Set(['a.example', 'b.example']);
    expect(siteClaim({ sites: ['a.example', 'b.example'] })).toEqual(expected);
    expect(siteClaim({ sites: '["a.example","b.example"]' })).toEqual(expected);
    expect(siteClaim({ sites: '[a.example b.example]' })).toEqual(expected);
    expect(siteClaim({ sites: 'a.example, b.example' })).toEqual(expected);
    // A claim of another shape allows nothing rather than everything.
    expect(siteClaim({ sites: 42 })).toEqual(new Set());
    expect(siteClaim({ sub: 'x' })).toBeUndefined();
    expect(siteClaim(undefined)).toBeUndefined();
  });
});
