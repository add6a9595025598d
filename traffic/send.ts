import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { GeneratedRecord, GenerationSummary, PageViewGenerator } from './generator.js';
import { putRecordsReliably } from '../shared/kinesis-producer.js';

/** Live traffic: every tick, the records whose time has come, sent with PutRecords. Used by generate and start. */

export interface TrafficOptions {
  readonly kinesis: KinesisClient;
  readonly stream: string;
  readonly generator: PageViewGenerator;
  readonly rate: number;
  /** Records to send; Infinity until stopped. */
  readonly total: number;
  readonly summary: GenerationSummary;
  readonly signal?: AbortSignal;
  readonly onRetry?: (failedEntries: number, attempt: number) => void;
  readonly onProgress?: (sent: number, retried: number) => void;
}

export async function sendTraffic(options: TrafficOptions): Promise<{ sent: number; retried: number }> {
  const { rate, total, generator, summary } = options;
  const started = Date.now();
  let lastProgress = started;
  let sent = 0;
  let retried = 0;
  while (sent < total && !options.signal?.aborted) {
    const due = Math.min(total, Math.max(sent + 1, Math.floor(((Date.now() - started) / 1000) * rate)));
    const batch: GeneratedRecord[] = [];
    while (sent + batch.length < due) batch.push(generator.next());
    const { retriedEntries } = await putRecordsReliably(options.kinesis, options.stream, batch, {
      ...(options.onRetry ? { onRetry: options.onRetry } : {}),
    });
    retried += retriedEntries;
    for (const record of batch) summary.add(record);
    sent += batch.length;
    if (options.onProgress && Date.now() - lastProgress >= 5000) {
      lastProgress = Date.now();
      options.onProgress(sent, retried);
    }
    const wait = Math.min(200, started + ((sent + 1) / rate) * 1000 - Date.now());
    if (wait > 0 && sent < total) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  return { sent, retried };
}
