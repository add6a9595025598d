import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import { validatePageView, type PageView } from '../../../shared/event.js';

/** Every record on a stream, from the start of each shard, decoded; an invalid record fails the test. */
export async function streamEvents(kinesis: KinesisClient, streamName: string): Promise<PageView[]> {
  const { Shards = [] } = await kinesis.send(new ListShardsCommand({ StreamName: streamName }));
  const events: PageView[] = [];
  for (const shard of Shards) {
    let { ShardIterator } = await kinesis.send(
      new GetShardIteratorCommand({
        StreamName: streamName,
        ShardId: shard.ShardId!,
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    );
    for (;;) {
      const page = await kinesis.send(new GetRecordsCommand({ ShardIterator }));
      for (const record of page.Records ?? []) {
        const checked = validatePageView(JSON.parse(new TextDecoder().decode(record.Data)), Date.now());
        if (!checked.ok) throw new Error(`an invalid record reached the stream: ${checked.rejection.reason}`);
        events.push(checked.event);
      }
      if (!page.Records?.length || !page.NextShardIterator) break;
      ShardIterator = page.NextShardIterator;
    }
  }
  return events;
}
