import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamRecord } from 'aws-lambda';
import { decodeBase64PageView, dimensionValue, DIMENSIONS } from '../../shared/event.js';
import { userHash } from '../../shared/sketch/index.js';
import { minuteBucket } from '../../shared/time.js';

/**
 * The naive handler: per event, decode, validate and one UpdateItem on its minute's item that adds to the
 * total's and each dimension's page-view counter, error counter (status 400 or above) and visitor set (the
 * user's hash): the same metrics as ours, one write per event.
 */
export async function naiveHandler(
  records: readonly KinesisStreamRecord[],
  documents: DynamoDBDocumentClient,
  table: string,
) {
  for (const record of records) {
    const result = decodeBase64PageView(
      record.kinesis.data,
      record.kinesis.approximateArrivalTimestamp * 1000,
    );
    if (!result.ok) continue;
    const cells = ['total', ...DIMENSIONS.map((d) => `${d}=${dimensionValue(result.event, d)}`)];
    const error = result.event.status >= 400;
    const names: Record<string, string> = {};
    const adds: string[] = [];
    for (const [i, cell] of cells.entries()) {
      names[`#c${i}`] = `c ${cell}`;
      names[`#u${i}`] = `u ${cell}`;
      adds.push(`#c${i} :one`, `#u${i} :user`);
      if (error) {
        names[`#e${i}`] = `e ${cell}`;
        adds.push(`#e${i} :one`);
      }
    }
    await documents.send(
      new UpdateCommand({
        TableName: table,
        Key: { pk: `naive#${minuteBucket(result.event.created)}`, sk: '-' },
        UpdateExpression: `ADD ${adds.join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ':one': 1, ':user': new Set([userHash(result.event.userId)]) },
      }),
    );
  }
}
