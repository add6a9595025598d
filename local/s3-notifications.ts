import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { objectCreatedEvent, type CatalogHandler } from '../lambdas/catalog/handler.js';
import { PREFIXES } from '../shared/resources.js';

/**
 * Plays S3's "Object Created" notifications to EventBridge for `raw/` and `firehose-errors/processing-failed/`:
 * s3rver sends none, so this lists the prefixes, and every object it has not seen (or whose ETag changed) becomes one event for the catalog handler,
 * whoever wrote it (the Firehose stand-in, a test, a user copying files). `sync()` runs a pass now: the local
 * scheduler calls it before each batch run, so a run always sees what has landed.
 */

export interface S3NotificationOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly handler: CatalogHandler;
  readonly stateDir?: string;
  readonly pollIntervalMs?: number;
  /**
   * Share of notifications lost on the way (0 to 1): a lost one is never sent, as when EventBridge drops an
   * event or the catalog target fails past its retries. The batch run's reconciliation must find its object.
   */
  readonly dropFraction?: number;
  /** Random numbers in [0, 1) for the drops. @default Math.random */
  readonly random?: () => number;
  readonly onError?: (message: string, error: unknown) => void;
}

export class S3NotificationStandIn {
  readonly stats = { notified: 0, dropped: 0, passes: 0 };
  private seen = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private passing: Promise<number> | undefined;

  constructor(private readonly options: S3NotificationOptions) {
    const file = this.stateFile;
    if (file) {
      try {
        this.seen = new Map(Object.entries(JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>));
      } catch {
        this.seen = new Map();
      }
    }
  }

  private get stateFile(): string | undefined {
    return this.options.stateDir
      ? join(this.options.stateDir, `s3-notified-${this.options.bucket}.json`)
      : undefined;
  }

  start(): void {
    this.timer = setInterval(
      () => void this.sync().catch((error) => this.options.onError?.('S3 notifications: pass failed', error)),
      this.options.pollIntervalMs ?? 2000,
    );
  }

  /** Notifies every object created since the last pass; concurrent calls share one pass. */
  sync(): Promise<number> {
    this.passing ??= this.pass().finally(() => (this.passing = undefined));
    return this.passing;
  }

  private async pass(): Promise<number> {
    const { s3, bucket, handler } = this.options;
    let notified = 0;
    // The prefixes the stack's EventBridge rules send to the catalog: the master dataset, and failed records.
    for (const prefix of [PREFIXES.raw, PREFIXES.processingFailed]) {
      let token: string | undefined;
      do {
        const page = await s3.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: prefix,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
        for (const object of page.Contents ?? []) {
          const etag = object.ETag ?? '';
          if (this.seen.get(object.Key!) === etag) continue;
          const drop =
            (this.options.dropFraction ?? 0) > 0 &&
            (this.options.random ?? Math.random)() < this.options.dropFraction!;
          if (drop) this.stats.dropped += 1;
          else await handler(objectCreatedEvent(bucket, object.Key!));
          this.seen.set(object.Key!, etag);
          if (!drop) notified += 1;
        }
        token = page.NextContinuationToken;
      } while (token);
    }
    this.stats.passes += 1;
    this.stats.notified += notified;
    if (notified > 0) this.save();
    return notified;
  }

  private save(): void {
    const file = this.stateFile;
    if (!file) return;
    mkdirSync(this.options.stateDir!, { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify(Object.fromEntries(this.seen)));
    renameSync(`${file}.tmp`, file);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.passing?.catch(() => undefined);
  }
}
