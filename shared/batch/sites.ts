import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { conditionally, queryAll } from '../dynamodb.js';
import { siteSpanKey } from '../keys.js';
import { DAY_MS, HOUR_MS } from '../time.js';

/**
 * Each site's span in the batch views: the first and the last hour in which they counted a page view of it, one
 * item per site in the batch-views table (`pk = site`, `sk = <site>`, keys from shared/keys.ts). A batch run
 * widens the span of every site it wrote totals for; spans never shrink (raw data only grows). They serve two
 * readers: `GET /v1/sites` (docs/sites.md, first and last event) and the batch run itself, which recomputes a
 * day for every site whose span covers it, so that a recomputed hour's rows of a site replace its old ones even
 * when the hour has none of that site now.
 */

export interface SiteSpan {
  readonly site: string;
  /** Start of the first hour with a page view of the site. */
  readonly firstHourMs: number;
  /** Start of the last hour with a page view of the site. */
  readonly lastHourMs: number;
}

export interface SiteSpanDeps {
  readonly documents: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly onRequest?: () => void;
}

/** Every site's span: one Query (a site is one small item). */
export async function readSiteSpans(deps: SiteSpanDeps): Promise<Map<string, SiteSpan>> {
  const items = await queryAll(
    deps.documents,
    {
      TableName: deps.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': siteSpanKey('').pk },
    },
    deps.onRequest,
  );
  const spans = new Map<string, SiteSpan>();
  for (const item of items) {
    if (typeof item.f !== 'number' || typeof item.l !== 'number') continue;
    spans.set(item.sk as string, { site: item.sk as string, firstHourMs: item.f, lastHourMs: item.l });
  }
  return spans;
}

/** Whether a site's span covers any hour of the day starting at dayMs. */
export const spanCoversDay = (span: SiteSpan | undefined, dayMs: number): boolean =>
  span !== undefined && span.firstHourMs < dayMs + DAY_MS && span.lastHourMs + HOUR_MS > dayMs;

/**
 * Widens a site's span to cover [firstHourMs, lastHourMs]: one conditional update per end that moves (an end
 * another run moved further already fails its condition and is left as it is).
 */
export async function widenSiteSpan(
  deps: SiteSpanDeps,
  known: SiteSpan | undefined,
  site: string,
  firstHourMs: number,
  lastHourMs: number,
): Promise<void> {
  const ends = [
    { name: 'f', value: firstHourMs, moves: !known || firstHourMs < known.firstHourMs, op: '>' },
    { name: 'l', value: lastHourMs, moves: !known || lastHourMs > known.lastHourMs, op: '<' },
  ];
  for (const end of ends) {
    if (!end.moves) continue;
    deps.onRequest?.();
    await conditionally(
      deps.documents.send(
        new UpdateCommand({
          TableName: deps.tableName,
          Key: siteSpanKey(site),
          UpdateExpression: 'SET #end = :value',
          ConditionExpression: `attribute_not_exists(#end) OR #end ${end.op} :value`,
          ExpressionAttributeNames: { '#end': end.name },
          ExpressionAttributeValues: { ':value': end.value },
        }),
      ),
    );
  }
}
