import { PutRecordCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import {
  createCollector,
  EVENTS_PATH,
  type Collector,
  type CollectRequest,
} from '../shared/collection/collector.js';
import { ORIGIN_VERIFY_HEADER } from '../shared/collection/edge.js';
import { createCollectHandler } from '../lambdas/collect/handler.js';
import { fixedOriginSecret } from '../shared/collection/origin-verify.js';
import { SiteAllowList } from '../shared/collection/sites.js';
import { putRecordsWriter, type EventStreamWriter } from '../shared/collection/stream-writer.js';
import { buildTracker } from '../shared/collection/tracker.js';
import { createAwsClients } from '../shared/aws-clients.js';
import { resourceNames } from '../shared/resources.js';
import { startEmulators } from '../local/emulators.js';
import { startHttpApi } from '../local/http-server.js';
import { provision } from '../local/provision.js';
import { benchMain } from './support/cli.js';
import {
  collectionInputs,
  estimateCollectionCost,
  estimatePreviousCollectionCost,
  HTTPS_FLOOR_PER_MILLION,
  trackerLoadsWithin,
} from './support/cost-model.js';
import { cpuSeconds, percentile } from './support/stats.js';
import type { BenchFigure, BenchSection } from './support/types.js';

/**
 * Collector: throughput and latency of tracker-shaped requests (one page view, text/plain) over HTTP on the local
 * stack, the handler's time per event (what Lambda bills), and, for batches, one PutRecords call per request
 * against the naive collector that puts each event with its own PutRecord, measured in the same run.
 */

const SITE = 'https://shop.example';
/** The origin secret the requests carry, as CloudFront's would. */
const ORIGIN_SECRET = 'bench origin secret';
const USER_AGENT =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36';
const BATCH = 50;
const SHARDS = 4;

/** The naive collector's writer: one PutRecord call per event, one after another. */
function putRecordPerEvent(kinesis: KinesisClient, streamName: string): EventStreamWriter {
  return {
    async put(records) {
      for (const record of records) {
        await kinesis.send(
          new PutRecordCommand({
            StreamName: streamName,
            Data: record.data,
            PartitionKey: record.partitionKey,
          }),
        );
      }
      return { stored: records.map(() => true), resent: 0 };
    },
  };
}

/** A writer that takes everything and sends nothing: the collector's own CPU cost. */
const countingSink: EventStreamWriter = {
  put: async (records) => ({ stored: records.map(() => true), resent: 0 }),
};

let sequence = 0;
function request(events: number): CollectRequest {
  const body = Array.from({ length: events }, () => ({
    url: `${SITE}/products/${(sequence += 1) % 500}`,
    eventId: `bench-${sequence}`,
  }));
  return {
    method: 'POST',
    path: EVENTS_PATH,
    headers: {
      'content-type': 'text/plain;charset=UTF-8',
      origin: SITE,
      'user-agent': USER_AGENT,
      'cloudfront-viewer-country': 'DE',
      'cloudfront-viewer-address': `198.51.100.${sequence % 250}:443`,
      [ORIGIN_VERIFY_HEADER]: ORIGIN_SECRET,
    },
    body: Buffer.from(JSON.stringify(events === 1 ? body[0] : body)),
    sourceIp: '130.176.0.1',
  };
}

const median = (samples: readonly number[]) => percentile(samples, 50);

/** `total` single-event requests over HTTP, as the collector's function URL passes them, `concurrency` at a time. */
async function overHttp(collect: Collector, total: number, concurrency: number) {
  const server = await startHttpApi({
    handler: async () => ({ statusCode: 404 }),
    routes: [{ paths: [EVENTS_PATH], handler: createCollectHandler(collect) }],
  });
  try {
    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) {
          next += 1;
          const { headers, body } = request(1);
          const sent = performance.now();
          const response = await fetch(`${server.url}${EVENTS_PATH}`, {
            method: 'POST',
            headers: headers as Record<string, string>,
            body: Buffer.from(body!).toString(),
          });
          await response.text();
          if (response.status !== 202) throw new Error(`collector answered ${response.status} over HTTP`);
          latencies.push(performance.now() - sent);
        }
      }),
    );
    return { eventsPerSecond: total / ((performance.now() - started) / 1000), latencies };
  } finally {
    await server.close();
  }
}

export const collectBench: BenchSection = async ({ quick, log }) => {
  const emulators = await startEmulators();
  const clients = createAwsClients(emulators);
  try {
    const names = resourceNames('bench-collect');
    await provision(clients, names, { shards: SHARDS });
    const config = {
      sites: new SiteAllowList(['shop.example']),
      visitorKey: 'bench key, not a secret at all',
      origin: fixedOriginSecret(ORIGIN_SECRET),
    };
    const collector = (writer: EventStreamWriter): Collector => createCollector({ writer, config });
    const ours = collector(putRecordsWriter(clients.kinesis, names.stream));
    const naive = collector(putRecordPerEvent(clients.kinesis, names.stream));
    const accept = async (collect: Collector, events: number) => {
      const response = await collect(request(events));
      if (response.statusCode !== 202)
        throw new Error(`collector answered ${response.statusCode}: ${response.body}`);
    };
    const figures: BenchFigure[] = [];

    // Tracker-shaped requests over HTTP, as a function URL passes them: to the stream, and to a counting sink
    // (what the HTTP front and the collector take when the stream is not the limit).
    const total = quick ? 1500 : 8000;
    const concurrency = 16;
    for (const [target, collect] of [
      ['kinesis-local', ours],
      ['a counting sink', collector(countingSink)],
    ] as const) {
      log(`collect: ${total} single-event requests over HTTP to ${target}, ${concurrency} at a time`);
      const { eventsPerSecond, latencies } = await overHttp(collect, total, concurrency);
      const note = `${total} requests, ${concurrency} concurrent, client and server on this machine`;
      const onStream = target === 'kinesis-local';
      figures.push({
        section: 'collect',
        metric: `single-event requests over HTTP to ${target}: throughput`,
        value: Math.round(eventsPerSecond),
        unit: 'events/s',
        note: onStream
          ? `${note}; bound by kinesis-local (${SHARDS} shards), where concurrent PutRecords calls queue: compare the handler time of one request below`
          : `${note}; no stream: the local HTTP front and the collector alone`,
      });
      if (onStream) {
        figures.push(
          ...[50, 99].map((p) => ({
            section: 'collect',
            metric: `single-event requests over HTTP to ${target}: latency p${p}`,
            value: Number(percentile(latencies, p).toFixed(2)),
            unit: 'ms',
            note: `${note}; queueing at the emulator dominates`,
          })),
        );
      }
    }

    // Handler time per request: what Lambda bills for one page view (here the PutRecords round trip is local).
    const singles: number[] = [];
    for (let i = 0; i < (quick ? 200 : 1000); i += 1) {
      const started = performance.now();
      await accept(ours, 1);
      singles.push(performance.now() - started);
    }
    figures.push({
      section: 'collect',
      metric: 'handler time per single-event request',
      value: Number(median(singles).toFixed(3)),
      unit: 'ms',
      note: `median of ${singles.length} sequential requests; Lambda duration per page view, PutRecords to kinesis-local included`,
    });

    // Batches: one PutRecords per request against one PutRecord per event, interleaved.
    const rounds = quick ? 10 : 40;
    const perEvent = { ours: [] as number[], naive: [] as number[] };
    log(`collect: ${rounds} rounds of ${BATCH}-event batches, ours and naive interleaved`);
    for (let round = 0; round < rounds; round += 1) {
      for (const [name, collect] of [
        ['ours', ours],
        ['naive', naive],
      ] as const) {
        const started = performance.now();
        await accept(collect, BATCH);
        perEvent[name].push(((performance.now() - started) * 1000) / BATCH);
      }
    }
    const [oursUs, naiveUs] = [median(perEvent.ours), median(perEvent.naive)];
    figures.push({
      section: 'collect',
      metric: `handler time per event in ${BATCH}-event batches`,
      value: Math.round(oursUs),
      unit: 'µs',
      baseline: Math.round(naiveUs),
      ratio: Number((naiveUs / oursUs).toFixed(2)),
      note: `baseline: naive collector, one PutRecord per event; median of ${rounds} batches each; ratio = naive / ours`,
    });

    // The collector's own CPU: parse, validate, enrich (UA parse, bot check, visitor hash), to a counting sink.
    const sink = collector(countingSink);
    const events = quick ? 20_000 : 100_000;
    const cpu = await cpuSeconds(async () => {
      for (let i = 0; i < events / BATCH; i += 1) await accept(sink, BATCH);
    });
    figures.push({
      section: 'collect',
      metric: 'CPU per event: parse, validate, enrich',
      value: Number(((cpu * 1e6) / events).toFixed(2)),
      unit: 'µs',
      note: `${events} events in ${BATCH}-event requests to a counting sink (no I/O)`,
    });

    const tracker = buildTracker();
    figures.push({
      section: 'collect',
      metric: 'tracker script /pv.js, gzipped',
      value: tracker.gzipBytes,
      unit: 'bytes',
      note: `${tracker.bytes} bytes minified (esbuild), gzip level 9`,
    });

    // What collection costs at 1,000 page views/s with the handler time measured here (bench/support/cost-model.ts).
    const cost = collectionInputs({
      pageViewsPerSecond: 1000,
      measuredLambdaMs: median(singles),
      trackerGzipBytes: tracker.gzipBytes,
    });
    const estimate = estimateCollectionCost(cost.ours);
    const previous = estimatePreviousCollectionCost(cost.previous);
    const perMillion = (usd: number) => Number(usd.toFixed(3));
    const millions = estimate.total / estimate.perMillionEvents;
    figures.push(
      {
        section: 'collect',
        metric: 'collection cost per million page views at 1,000 page views/s',
        value: perMillion(estimate.perMillionEvents),
        unit: 'USD',
        baseline: perMillion(previous.perMillionEvents),
        ratio: Number((previous.perMillionEvents / estimate.perMillionEvents).toFixed(2)),
        note:
          `CloudFront + WAF rate rule per IP + function URL Lambda, ${cost.ours.trackerLoadsPerPageView} /pv.js loads per page view; ` +
          'baseline: the previous design (HTTP API, no WAF, /pv.js every page view); line items below',
      },
      {
        section: 'collect',
        metric: 'collection cost floor per million page views',
        value: perMillion(HTTPS_FLOOR_PER_MILLION),
        unit: 'USD',
        note: `CloudFront's HTTPS request price; this design's lines at their floors (WAF per request, one Lambda invocation, no /pv.js loads): $${(estimate.floorTotal / millions).toFixed(2)}`,
      },
      ...estimate.lines.map((line) => ({
        section: 'collect',
        metric: `collection per million page views: ${line.service}, ${line.item}`,
        value: perMillion(line.usd / millions),
        unit: 'USD',
        note: `floor $${(line.floorUsd / millions).toFixed(3)}`,
      })),
      {
        section: 'collect',
        metric: '/pv.js loads per page view that keep collection within $2.00 per million',
        value: Number(trackerLoadsWithin(2, cost.ours).toFixed(3)),
        unit: 'loads',
        note: 'each load costs a CloudFront request and a WAF inspection; a site that inlines or hosts the script loads none',
      },
    );
    return figures;
  } finally {
    clients.destroy();
    await emulators.stop();
  }
};

benchMain(import.meta.url, collectBench);
