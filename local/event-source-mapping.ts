import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  type KinesisClient,
  type _Record as KinesisRecord,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type {
  Context,
  KinesisStreamBatchResponse,
  KinesisStreamEvent,
  KinesisStreamRecord,
} from 'aws-lambda';
import { PREFIXES, type SpeedSourceSettings } from '../shared/resources.js';
import { padSequence } from '../shared/speed/table.js';

/**
 * Plays the Lambda event source mapping for a Kinesis stream: one poller per shard, one batch in flight per
 * shard, checkpoint per shard, ReportBatchItemFailures, bisect on error, retry limits and an on-failure store,
 * with the semantics of the Lambda developer guide ("Using Lambda with Kinesis").
 */

export type KinesisHandler = (
  event: KinesisStreamEvent,
  context: Pick<Context, 'getRemainingTimeInMillis'>,
) => Promise<KinesisStreamBatchResponse | void>;

/** Where batches go once their retries are exhausted (AWS: an SQS/SNS/S3 on-failure destination). */
export interface OnFailureStore {
  put(record: OnFailureRecord): Promise<void>;
}

/** The invocation record AWS sends to an on-failure destination for a Kinesis batch, plus the records. */
export interface OnFailureRecord {
  readonly requestContext: {
    requestId: string;
    functionArn: string;
    condition: string;
    approximateInvokeCount: number;
  };
  readonly responseContext: { statusCode: number; executedVersion: string; functionError: string };
  readonly version: '1.0';
  readonly timestamp: string;
  readonly KinesisBatchInfo: {
    shardId: string;
    startSequenceNumber: string;
    endSequenceNumber: string;
    approximateArrivalOfFirstRecord: string;
    approximateArrivalOfLastRecord: string;
    batchSize: number;
    streamArn: string;
  };
  readonly payload: KinesisStreamEvent;
}

export function s3OnFailureStore(s3: S3Client, bucket: string): OnFailureStore {
  return {
    async put(record) {
      const { shardId, startSequenceNumber } = record.KinesisBatchInfo;
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${PREFIXES.speedOnFailure}${record.timestamp.slice(0, 10)}/${shardId}-${startSequenceNumber}.json`,
          Body: JSON.stringify(record),
          ContentType: 'application/json',
        }),
      );
    },
  };
}

export interface EventSourceMappingOptions {
  readonly kinesis: KinesisClient;
  readonly streamName: string;
  readonly handler: KinesisHandler;
  readonly settings: SpeedSourceSettings;
  readonly startingPosition?: 'TRIM_HORIZON' | 'LATEST';
  readonly onFailure?: OnFailureStore;
  /** Checkpoints persist here (a JSON file) so that a restart resumes; absent keeps them in memory. */
  readonly stateDir?: string;
  /** Idle wait between empty polls; Lambda polls each shard about once a second. @default 1000 */
  readonly pollIntervalMs?: number;
  /** Wait before retrying a failed batch. @default 500 */
  readonly retryDelayMs?: number;
  /** The function timeout that getRemainingTimeInMillis counts down from. @default 60000 */
  readonly functionTimeoutMs?: number;
  readonly region?: string;
  readonly onError?: (message: string, error: unknown) => void;
}

export interface MappingStats {
  records: number;
  batches: number;
  retries: number;
  bisects: number;
  sentToOnFailure: number;
}

type Outcome =
  { ok: true } | { ok: false; resumeIndex: number } | { ok: false; wholeBatch: true; reason: string };

/** What a batch response means under ReportBatchItemFailures (ARCHITECTURE.md, "AWS semantics"). */
export function interpretResponse(
  batch: readonly Pick<KinesisRecord, 'SequenceNumber'>[],
  response: unknown,
): Outcome {
  if (response === undefined || response === null) return { ok: true };
  const failures = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return { ok: true };
  if (!Array.isArray(failures))
    return { ok: false, wholeBatch: true, reason: 'batchItemFailures is not a list' };
  if (failures.length === 0) return { ok: true };
  let lowest = -1;
  for (const failure of failures) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || id === '') {
      return {
        ok: false,
        wholeBatch: true,
        reason: 'a batch item failure has an empty or missing itemIdentifier',
      };
    }
    const index = batch.findIndex((r) => r.SequenceNumber === id);
    if (index < 0) return { ok: false, wholeBatch: true, reason: `itemIdentifier ${id} is not in the batch` };
    if (lowest < 0 || padSequence(id) < padSequence(batch[lowest]!.SequenceNumber!)) lowest = index;
  }
  return { ok: false, resumeIndex: lowest };
}

interface PendingBatch {
  readonly records: KinesisRecord[];
  attempts: number;
}

class ShardPoller {
  /** Fetched records not yet handed to the function, in sequence order. */
  private fetched: KinesisRecord[] = [];
  /** Batches to retry (or bisected halves), before anything newer. */
  private retries: PendingBatch[] = [];
  private iterator: string | undefined;
  private closed = false;
  caughtUpAt = 0;
  done = false;
  /** When the handler call in progress began, for drain()'s report of a stuck shard. */
  deliveringSince: number | undefined;

  constructor(
    private readonly mapping: KinesisEventSourceMapping,
    readonly shard: Shard,
    public checkpoint: string | undefined,
  ) {}

  get idle(): boolean {
    return this.fetched.length === 0 && this.retries.length === 0;
  }

  /** One line for drain()'s error: what this shard is waiting for. */
  describe(now: number): string {
    const delivering =
      this.deliveringSince === undefined
        ? 'no handler call'
        : `a handler call for ${now - this.deliveringSince} ms`;
    return `${this.shard.ShardId}: ${this.done ? 'done' : 'open'}, ${this.fetched.length} fetched, ${this.retries.length} to retry, ${delivering}, caught up ${this.caughtUpAt === 0 ? 'never' : `${now - this.caughtUpAt} ms ago`}`;
  }

  async run(): Promise<void> {
    const { options } = this.mapping;
    while (!this.mapping.stopping) {
      try {
        const batch = this.retries.shift() ?? (await this.nextBatch());
        if (!batch) {
          if (this.closed && this.idle) {
            this.done = true;
            return;
          }
          await this.mapping.sleep(options.pollIntervalMs ?? 1000);
          continue;
        }
        await this.deliver(batch);
      } catch (error) {
        options.onError?.(`poller for ${this.shard.ShardId} failed; retrying`, error);
        this.iterator = undefined;
        this.fetched = [];
        this.retries = [];
        await this.mapping.sleep(options.retryDelayMs ?? 500);
      }
    }
  }

  private async getIterator(): Promise<string | undefined> {
    const { kinesis, streamName, startingPosition = 'TRIM_HORIZON' } = this.mapping.options;
    const { ShardIterator } = await kinesis.send(
      new GetShardIteratorCommand({
        StreamName: streamName,
        ShardId: this.shard.ShardId,
        ...(this.checkpoint
          ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: this.checkpoint }
          : { ShardIteratorType: startingPosition }),
      }),
    );
    return ShardIterator;
  }

  /** Gathers up to batchSize records, waiting up to the batching window for a fuller batch. */
  private async nextBatch(): Promise<PendingBatch | undefined> {
    const { batchSize, maxBatchingWindowSeconds } = this.mapping.options.settings;
    const windowEnds = Date.now() + maxBatchingWindowSeconds * 1000;
    for (;;) {
      if (this.fetched.length < batchSize && !this.closed) {
        const before = this.fetched.length;
        await this.fetch(batchSize - this.fetched.length);
        if (this.fetched.length === before && before === 0) return undefined;
      }
      if (
        this.fetched.length >= batchSize ||
        Date.now() >= windowEnds ||
        this.closed ||
        this.mapping.stopping
      )
        break;
      await this.mapping.sleep(Math.min(200, windowEnds - Date.now()));
    }
    if (this.fetched.length === 0) return undefined;
    return { records: this.fetched.splice(0, batchSize), attempts: 0 };
  }

  private async fetch(limit: number): Promise<void> {
    this.iterator ??= await this.getIterator();
    if (!this.iterator) {
      this.closed = true;
      return;
    }
    const response = await this.mapping.options.kinesis.send(
      new GetRecordsCommand({ ShardIterator: this.iterator, Limit: Math.min(10_000, Math.max(1, limit)) }),
    );
    this.fetched.push(...(response.Records ?? []));
    this.iterator = response.NextShardIterator;
    if (!this.iterator) this.closed = true;
    if (
      (response.Records?.length ?? 0) === 0 &&
      (response.MillisBehindLatest ?? 0) === 0 &&
      this.retries.length === 0
    ) {
      this.caughtUpAt = Date.now();
    }
  }

  private async deliver(batch: PendingBatch): Promise<void> {
    const { options, stats } = this.mapping;
    const started = Date.now();
    const timeout = options.functionTimeoutMs ?? 60_000;
    let outcome: Outcome;
    this.deliveringSince = started;
    try {
      const response = await options.handler(this.mapping.toEvent(this.shard.ShardId!, batch.records), {
        getRemainingTimeInMillis: () => Math.max(0, timeout - (Date.now() - started)),
      });
      outcome = interpretResponse(batch.records, response);
    } catch (error) {
      options.onError?.(
        `handler failed on a batch of ${batch.records.length} from ${this.shard.ShardId}`,
        error,
      );
      outcome = {
        ok: false,
        wholeBatch: true,
        reason: error instanceof Error ? error.message : String(error),
      };
    }
    this.deliveringSince = undefined;
    stats.batches += 1;
    if (outcome.ok) {
      stats.records += batch.records.length;
      this.advance(batch.records[batch.records.length - 1]!);
      return;
    }
    const { settings } = options;
    if ('resumeIndex' in outcome && outcome.resumeIndex > 0) {
      // Records before the lowest reported failure are done: the checkpoint moves to just before it.
      stats.records += outcome.resumeIndex;
      this.advance(batch.records[outcome.resumeIndex - 1]!);
    }
    const failing = 'resumeIndex' in outcome ? batch.records.slice(outcome.resumeIndex) : batch.records;
    const attempts = batch.attempts + 1;
    const oldestArrival = failing[0]!.ApproximateArrivalTimestamp?.getTime() ?? Date.now();
    const tooOld =
      settings.maxRecordAgeSeconds > 0 && Date.now() - oldestArrival > settings.maxRecordAgeSeconds * 1000;
    if (attempts > settings.retryAttempts || tooOld) {
      await this.sendToOnFailure(failing, attempts, tooOld ? 'RecordAgeExceeded' : 'RetryAttemptsExhausted');
      return;
    }
    stats.retries += 1;
    if (settings.bisectBatchOnError && failing.length > 1) {
      // Bisect: split the failing batch in two and retry each half on its own.
      const middle = Math.ceil(failing.length / 2);
      stats.bisects += 1;
      this.retries.unshift(
        { records: failing.slice(0, middle), attempts },
        { records: failing.slice(middle), attempts },
      );
    } else {
      this.retries.unshift({ records: failing, attempts });
    }
    await this.mapping.sleep(options.retryDelayMs ?? 500);
  }

  private async sendToOnFailure(
    records: KinesisRecord[],
    attempts: number,
    condition: string,
  ): Promise<void> {
    const { options, stats } = this.mapping;
    const first = records[0]!;
    const last = records[records.length - 1]!;
    await options.onFailure?.put({
      requestContext: {
        requestId: randomUUID(),
        functionArn: 'arn:aws:lambda:local:000000000000:function:speed',
        condition,
        approximateInvokeCount: attempts,
      },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      version: '1.0',
      timestamp: new Date().toISOString(),
      KinesisBatchInfo: {
        shardId: this.shard.ShardId!,
        startSequenceNumber: first.SequenceNumber!,
        endSequenceNumber: last.SequenceNumber!,
        approximateArrivalOfFirstRecord: (first.ApproximateArrivalTimestamp ?? new Date()).toISOString(),
        approximateArrivalOfLastRecord: (last.ApproximateArrivalTimestamp ?? new Date()).toISOString(),
        batchSize: records.length,
        streamArn: this.mapping.streamArn,
      },
      payload: this.mapping.toEvent(this.shard.ShardId!, records),
    });
    stats.sentToOnFailure += records.length;
    // Like Lambda, the mapping moves past a batch it has given up on.
    this.advance(last);
  }

  private advance(record: KinesisRecord): void {
    this.checkpoint = record.SequenceNumber;
    this.mapping.saveCheckpoints();
  }
}

export class KinesisEventSourceMapping {
  readonly stats: MappingStats = { records: 0, batches: 0, retries: 0, bisects: 0, sentToOnFailure: 0 };
  stopping = false;
  private readonly pollers = new Map<string, ShardPoller>();
  private readonly running = new Set<Promise<void>>();
  private readonly wakers = new Set<() => void>();
  private discovery: NodeJS.Timeout | undefined;
  readonly streamArn: string;

  constructor(readonly options: EventSourceMappingOptions) {
    if (options.settings.parallelizationFactor !== 1) {
      throw new Error(
        `parallelizationFactor must be 1: the speed layer's per-shard high-water needs one batch at a time per shard (got ${String(options.settings.parallelizationFactor)})`,
      );
    }
    this.streamArn = `arn:aws:kinesis:${options.region ?? 'us-east-1'}:000000000000:stream/${options.streamName}`;
  }

  private get checkpointFile(): string | undefined {
    return this.options.stateDir
      ? join(this.options.stateDir, `esm-${this.options.streamName}.json`)
      : undefined;
  }

  private loadCheckpoints(): Record<string, string> {
    const file = this.checkpointFile;
    if (!file) return {};
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    } catch {
      return {};
    }
  }

  saveCheckpoints(): void {
    const file = this.checkpointFile;
    if (!file) return;
    const checkpoints: Record<string, string> = {};
    for (const [shardId, poller] of this.pollers)
      if (poller.checkpoint) checkpoints[shardId] = poller.checkpoint;
    mkdirSync(this.options.stateDir!, { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify(checkpoints));
    renameSync(`${file}.tmp`, file);
  }

  toEvent(shardId: string, records: readonly KinesisRecord[]): KinesisStreamEvent {
    const region = this.options.region ?? 'us-east-1';
    return {
      Records: records.map((r): KinesisStreamRecord => ({
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: r.PartitionKey!,
          sequenceNumber: r.SequenceNumber!,
          data: Buffer.from(r.Data ?? new Uint8Array()).toString('base64'),
          approximateArrivalTimestamp: (r.ApproximateArrivalTimestamp?.getTime() ?? Date.now()) / 1000,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `${shardId}:${r.SequenceNumber!}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: 'arn:aws:iam::000000000000:role/speed-function',
        awsRegion: region,
        eventSourceARN: this.streamArn,
      })),
    };
  }

  /** Sleeps unless the mapping is stopping. */
  sleep(ms: number): Promise<void> {
    if (this.stopping || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  async start(): Promise<void> {
    await this.discoverShards();
    this.discovery = setInterval(() => {
      this.discoverShards().catch((error: unknown) =>
        this.options.onError?.('shard discovery failed', error),
      );
    }, 10_000);
  }

  private async discoverShards(): Promise<void> {
    const shards: Shard[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.options.kinesis.send(
        new ListShardsCommand(nextToken ? { NextToken: nextToken } : { StreamName: this.options.streamName }),
      );
      shards.push(...(page.Shards ?? []));
      nextToken = page.NextToken;
    } while (nextToken);
    const checkpoints = this.loadCheckpoints();
    for (const shard of shards) {
      if (this.stopping || this.pollers.has(shard.ShardId!)) continue;
      // A child shard waits until its parent has been read to the end, keeping per-key order across resharding.
      const parent = shard.ParentShardId ? this.pollers.get(shard.ParentShardId) : undefined;
      if (parent && !parent.done) continue;
      const poller = new ShardPoller(this, shard, checkpoints[shard.ShardId!]);
      this.pollers.set(shard.ShardId!, poller);
      const run = poller.run();
      this.running.add(run);
      void run.finally(() => this.running.delete(run));
    }
  }

  /**
   * Resolves once every shard has delivered all records that were in the stream when it was called. It fails
   * only when the mapping stops making progress: no handler call running and none ended for `stallMs`. A call in
   * progress is progress however long it takes (a backfill batch on moto's slower writes takes minutes); the
   * test's own timeout bounds a call that never ends.
   */
  async drain(stallMs = 60_000): Promise<void> {
    const since = Date.now();
    let delivered = this.stats.batches;
    let progressAt = since;
    for (;;) {
      const now = Date.now();
      const pollers = [...this.pollers.values()];
      if (pollers.length > 0 && pollers.every((p) => p.done || (p.caughtUpAt > since && p.idle))) return;
      if (this.stats.batches !== delivered) {
        delivered = this.stats.batches;
        progressAt = now;
      }
      if (pollers.some((p) => p.deliveringSince !== undefined)) progressAt = now;
      if (now - progressAt > stallMs) {
        const shards = pollers.map((p) => p.describe(now)).join('; ');
        throw new Error(
          `event source mapping did not drain: no handler call for ${stallMs} ms (${shards || 'no shard found'})`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.discovery) clearInterval(this.discovery);
    for (const wake of [...this.wakers]) wake();
    await Promise.all([...this.running]);
    this.saveCheckpoints();
  }
}
