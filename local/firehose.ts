import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  type KinesisClient,
  type _Record as KinesisRecord,
} from '@aws-sdk/client-kinesis';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { FirehoseTransformationEventRecord } from 'aws-lambda';
import { transformRecord, type TransformedRecord } from '../shared/batch/transform.js';
import type { DeliveryMetrics, DeliveryReading } from '../shared/batch/delivery.js';
import { runAs } from '../shared/call-ledger.js';
import { PREFIXES } from '../shared/resources.js';
import type { MasterRecord } from '../shared/event.js';
import { parquetBytes } from './parquet.js';

/**
 * Plays Firehose with the stream as source: its own consumer of the stream, the same transform Lambda code,
 * buffering by size and time, one Parquet object per event-time partition per flush under
 * `raw/dt=YYYY-MM-DD/hour=HH/`, and failed records under `firehose-errors/processing-failed/`.
 * Checkpoints move only after the objects are written (at least once, like Firehose). It reports what Firehose
 * reports to CloudWatch about its delivery (`deliveryMetrics`: data freshness, how far behind the stream it
 * reads), and can hold every delivery for a while past its buffer, to play a Firehose that lags.
 */

export interface FirehoseStandInOptions {
  readonly kinesis: KinesisClient;
  readonly s3: S3Client;
  readonly streamName: string;
  readonly bucket: string;
  /** Flush when the oldest buffered record is this old. */
  readonly bufferSeconds: number;
  /** Flush when this many bytes are buffered. */
  readonly bufferBytes: number;
  readonly stateDir?: string;
  readonly pollIntervalMs?: number;
  /** Holds every delivery this long past its buffer (a lagging Firehose: throttled, retrying, behind). */
  readonly deliveryDelaySeconds?: number;
  /**
   * The transform (the ingest Lambda's code). A transform that throws plays a failed invocation: after its
   * retries the record goes to processing-failed/ with errorCode Lambda.FunctionError, as Firehose writes it.
   * @default transformRecord
   */
  readonly transform?: (record: FirehoseTransformationEventRecord) => TransformedRecord;
  /** The clock of buffer ages and data freshness. @default Date.now */
  readonly clock?: () => number;
  readonly onFlush?: (result: FlushResult) => void;
  readonly onError?: (message: string, error: unknown) => void;
}

export interface FlushResult {
  readonly objects: string[];
  readonly records: number;
  readonly failed: number;
}

interface Buffered {
  readonly partitions: Map<string, MasterRecord[]>;
  readonly failed: { data: string; errorCode: string; errorMessage: string; arrival: number }[];
  bytes: number;
  /** When the oldest buffered record entered (the stand-in's clock); 0 while empty. */
  firstAt: number;
  /** Per shard, the last record read into this buffer. */
  readonly reachedSequence: Map<string, string>;
}

const emptyBuffer = (): Buffered => ({
  partitions: new Map(),
  failed: [],
  bytes: 0,
  firstAt: 0,
  reachedSequence: new Map(),
});

/** `2026-11-25-13-05-09`, as Firehose names its objects. */
const objectTimestamp = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace(/[T:]/g, '-');

export class FirehoseStandIn {
  readonly stats = { records: 0, failed: 0, objects: 0, flushes: 0 };
  private buffer = emptyBuffer();
  private checkpoints: Record<string, string> = {};
  private readonly caughtUpAt = new Map<string, number>();
  /** Per shard, MillisBehindLatest of its last GetRecords. */
  private readonly behindLatest = new Map<string, number>();
  private shardCount = 0;
  /** When the oldest record of the delivery under way entered; undefined when none is under way. */
  private deliveringSince: number | undefined;
  private readonly clock: () => number;
  private releaseHeld: () => void = () => undefined;
  private everyShardRead: () => void = () => undefined;
  /** Resolves once every shard has answered a read (then the stand-in knows how far behind it is). */
  private readonly shardsRead = new Promise<void>((resolve) => (this.everyShardRead = resolve));
  private stopping = false;
  private loops: Promise<void>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<FlushResult> | undefined;

  constructor(private readonly options: FirehoseStandInOptions) {
    this.clock = options.clock ?? Date.now;
  }

  private get checkpointFile(): string | undefined {
    return this.options.stateDir
      ? join(this.options.stateDir, `firehose-${this.options.streamName}.json`)
      : undefined;
  }

  async start(): Promise<void> {
    const file = this.checkpointFile;
    if (file) {
      try {
        this.checkpoints = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
      } catch {
        this.checkpoints = {};
      }
    }
    const { Shards = [] } = await this.options.kinesis.send(
      new ListShardsCommand({ StreamName: this.options.streamName }),
    );
    this.shardCount = Shards.length;
    this.loops = Shards.map((shard) => this.readShard(shard.ShardId!));
    this.timer = setInterval(() => {
      const age = this.clock() - this.buffer.firstAt;
      if (this.buffer.firstAt > 0 && age >= this.options.bufferSeconds * 1000)
        void this.flush().catch(() => undefined);
    }, 250);
  }

  private async readShard(shardId: string): Promise<void> {
    const { kinesis, streamName } = this.options;
    let iterator: string | undefined;
    while (!this.stopping) {
      try {
        if (!iterator) {
          const checkpoint = this.checkpoints[shardId];
          ({ ShardIterator: iterator } = await kinesis.send(
            new GetShardIteratorCommand({
              StreamName: streamName,
              ShardId: shardId,
              ...(checkpoint
                ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: checkpoint }
                : { ShardIteratorType: 'TRIM_HORIZON' }),
            }),
          ));
          if (!iterator) return;
        }
        const response = await kinesis.send(
          new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }),
        );
        for (const record of response.Records ?? []) this.add(shardId, record);
        this.behindLatest.set(shardId, response.MillisBehindLatest ?? 0);
        if (this.behindLatest.size >= this.shardCount) this.everyShardRead();
        iterator = response.NextShardIterator;
        if (!iterator) return;
        if ((response.Records?.length ?? 0) === 0) {
          if ((response.MillisBehindLatest ?? 0) === 0) this.caughtUpAt.set(shardId, Date.now());
          await new Promise((resolve) => setTimeout(resolve, this.options.pollIntervalMs ?? 1000));
        }
        if (this.buffer.bytes >= this.options.bufferBytes) await this.flush();
      } catch (error) {
        this.options.onError?.(`Firehose stand-in: reading ${shardId} failed; retrying`, error);
        iterator = undefined;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  private add(shardId: string, record: KinesisRecord): void {
    const data = Buffer.from(record.Data ?? new Uint8Array());
    const arrival = record.ApproximateArrivalTimestamp?.getTime() ?? Date.now();
    const input: FirehoseTransformationEventRecord = {
      recordId: record.SequenceNumber!,
      approximateArrivalTimestamp: Date.now(),
      data: data.toString('base64'),
      kinesisRecordMetadata: {
        shardId,
        partitionKey: record.PartitionKey!,
        approximateArrivalTimestamp: arrival,
        sequenceNumber: record.SequenceNumber!,
        subsequenceNumber: '',
      },
    };
    let result: TransformedRecord;
    let failure: { errorCode: string; errorMessage: string } | undefined;
    try {
      // The transform Lambda's code, run as that function (the call ledger's tag; it makes no AWS calls).
      result = runAs('ingest', () => (this.options.transform ?? transformRecord)(input));
    } catch (error) {
      // Firehose skips a batch whose invocations all failed: its records go to the error prefix, unchanged.
      failure = {
        errorCode: 'Lambda.FunctionError',
        errorMessage: error instanceof Error ? error.message : String(error),
      };
      result = { recordId: input.recordId, result: 'ProcessingFailed', data: input.data };
    }
    const buffer = this.buffer;
    if (buffer.firstAt === 0) buffer.firstAt = this.clock();
    buffer.bytes += data.byteLength;
    buffer.reachedSequence.set(shardId, record.SequenceNumber!);
    if (!result.row || !result.metadata) {
      buffer.failed.push({
        data: result.data,
        errorCode: failure?.errorCode ?? 'Lambda.ProcessingFailed',
        errorMessage: failure?.errorMessage ?? result.rejection?.reason ?? 'rejected',
        arrival,
      });
      return;
    }
    const { dt, hour } = result.metadata.partitionKeys as { dt: string; hour: string };
    const key = `dt=${dt}/hour=${hour}`;
    const events = buffer.partitions.get(key);
    if (events) events.push(result.row);
    else buffer.partitions.set(key, [result.row]);
  }

  /** Writes everything buffered now; concurrent calls share one flush. */
  flush(): Promise<FlushResult> {
    this.flushing ??= this.writeBuffer().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async writeBuffer(): Promise<FlushResult> {
    const buffer = this.buffer;
    this.buffer = emptyBuffer();
    if (buffer.firstAt > 0) this.deliveringSince = buffer.firstAt;
    try {
      const delay = (this.options.deliveryDelaySeconds ?? 0) * 1000;
      // Held deliveries go out at once when the stand-in stops.
      if (delay > 0 && buffer.firstAt > 0 && !this.stopping)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.releaseHeld = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      return await this.deliver(buffer);
    } finally {
      this.deliveringSince = undefined;
    }
  }

  private async deliver(buffer: Buffered): Promise<FlushResult> {
    const { s3, bucket, streamName } = this.options;
    const now = Date.now();
    const objects: string[] = [];
    try {
      for (const [partition, events] of buffer.partitions) {
        const key = `${PREFIXES.raw}${partition}/${streamName}-1-${objectTimestamp(now)}-${randomUUID()}.parquet`;
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await parquetBytes(events) }));
        objects.push(key);
      }
      if (buffer.failed.length > 0) {
        const iso = new Date(now).toISOString();
        const key =
          `${PREFIXES.firehoseErrors}processing-failed/${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/` +
          `${iso.slice(11, 13)}/${streamName}-1-${objectTimestamp(now)}-${randomUUID()}`;
        const body = buffer.failed
          .map((f) =>
            JSON.stringify({
              attemptsMade: 1,
              arrivalTimestamp: f.arrival,
              errorCode: f.errorCode,
              errorMessage: f.errorMessage,
              attemptEndingTimestamp: now,
              rawData: f.data,
              lambdaArn: 'arn:aws:lambda:local:000000000000:function:ingest',
            }),
          )
          .join('\n');
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body + '\n' }));
        objects.push(key);
      }
    } catch (error) {
      // Keep what was not confirmed: merge it back in front of what arrived meanwhile.
      this.requeue(buffer);
      this.options.onError?.('Firehose stand-in: delivery failed; will retry', error);
      throw error;
    }
    const records = [...buffer.partitions.values()].reduce((sum, events) => sum + events.length, 0);
    for (const [shardId, sequence] of buffer.reachedSequence) this.checkpoints[shardId] = sequence;
    this.saveCheckpoints();
    this.stats.records += records;
    this.stats.failed += buffer.failed.length;
    this.stats.objects += objects.length;
    if (objects.length > 0) this.stats.flushes += 1;
    const result = { objects, records, failed: buffer.failed.length };
    if (objects.length > 0) this.options.onFlush?.(result);
    return result;
  }

  private requeue(buffer: Buffered): void {
    const current = this.buffer;
    for (const [partition, events] of current.partitions) {
      const earlier = buffer.partitions.get(partition);
      if (earlier) earlier.push(...events);
      else buffer.partitions.set(partition, events);
    }
    buffer.failed.push(...current.failed);
    buffer.bytes += current.bytes;
    for (const [shardId, sequence] of current.reachedSequence) buffer.reachedSequence.set(shardId, sequence);
    this.buffer = buffer;
  }

  private saveCheckpoints(): void {
    const file = this.checkpointFile;
    if (!file) return;
    mkdirSync(this.options.stateDir!, { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify(this.checkpoints));
    renameSync(`${file}.tmp`, file);
  }

  /**
   * What Firehose would report to CloudWatch now: the age of the oldest record not yet delivered (none when
   * nothing is buffered or under way) and how far behind the stream its readers are (once every shard has
   * answered a read; before that it reports nothing, as a Firehose that is not reading yet).
   */
  readonly deliveryMetrics: DeliveryMetrics = {
    readings: async () => {
      // A reading right after start waits briefly for the first reads, as the first datapoints on AWS.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.shardsRead, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
      clearTimeout(timer);
      const now = this.clock();
      const oldest = [this.deliveringSince, this.buffer.firstAt || undefined].filter(
        (t): t is number => t !== undefined,
      );
      const reading: DeliveryReading = {
        atMs: now,
        recordsRead: 0,
        ...(oldest.length > 0 ? { dataFreshnessMs: Math.max(0, now - Math.min(...oldest)) } : {}),
        ...(this.shardCount > 0 && this.behindLatest.size >= this.shardCount
          ? { millisBehindLatestMs: Math.max(...this.behindLatest.values()) }
          : {}),
      };
      return [reading];
    },
  };

  /** Reads every record present in the stream now, then flushes them. */
  async drain(timeoutMs = 60_000): Promise<FlushResult> {
    const since = Date.now();
    const deadline = since + timeoutMs;
    while ([...this.caughtUpAt.values()].filter((t) => t > since).length < this.loops.length) {
      if (Date.now() > deadline) throw new Error(`Firehose stand-in did not catch up within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return this.flush();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.releaseHeld();
    if (this.timer) clearInterval(this.timer);
    await Promise.all(this.loops);
    await this.flush().catch(() => undefined);
  }
}
