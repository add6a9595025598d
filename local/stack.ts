import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createApiHandler } from '../lambdas/api/handler.js';
import { readersFor } from '../shared/serving/readers.js';
import { createCatalogHandler } from '../lambdas/catalog/handler.js';
import { S3NotificationStandIn } from './s3-notifications.js';
import { createBatchHandler } from '../lambdas/batch/handler.js';
import type { CollectorMetric } from '../shared/collection/collector.js';
import { createSpeedHandler } from '../lambdas/speed/handler.js';
import type { SpeedObserver } from '../shared/speed/speed-layer.js';
import { createAwsClients, type AwsClients } from '../shared/aws-clients.js';
import { LEASE_MS } from '../shared/batch/run.js';
import { clearLease } from '../shared/batch/state.js';
import {
  DEFAULT_SETTINGS,
  DEFAULT_SPEED_SOURCE,
  SPEED_FUNCTION_TIMEOUT_SECONDS,
  resourceNames,
  stackSites,
  type ResourceNames,
  type RuntimeConfig,
  type Settings,
} from '../shared/resources.js';
import { createDuckDbEngine } from './athena-duckdb.js';
import type { RunningCloudFront } from './cloudfront.js';
import { LOCAL_COLLECTOR_SITES, startLocalCollector, type LocalCollectorOptions } from './collector.js';
import { siteOfEntry } from '../shared/collection/sites.js';
import { EMULATED, startEmulators, type EmulatedService, type RunningEmulators } from './emulators.js';
import { KinesisEventSourceMapping, s3OnFailureStore } from './event-source-mapping.js';
import { FirehoseStandIn } from './firehose.js';
import { startDemoSite, type RunningDemoSite } from './demo-site.js';
import { startHttpApi, type RunningHttpApi } from './http-server.js';
import { assertPortFree } from './ports.js';
import { provision } from './provision.js';
import { startScheduler, type RunningScheduler } from './scheduler.js';

/**
 * The whole pipeline on one machine: emulators, provisioned resources, and the real handlers driven by the
 * local stand-ins for the event source mapping, Firehose, the EventBridge schedule and API Gateway.
 */

/** Local settings: the same design with short buffers so that a demo shows data within seconds. */
export const LOCAL_SETTINGS: Settings = {
  ...DEFAULT_SETTINGS,
  firehoseBufferSeconds: 10,
  firehoseBufferMiB: 8,
};

/** kinesis-local's time to save the stream on exit (it starts stopping first, so this fits in 10 s). */
const KINESIS_STOP_GRACE_MS = 7000;

export interface LocalStackOptions {
  /** State between runs (emulator data, checkpoints, Parquet cache); absent keeps everything ephemeral. */
  readonly dataDir?: string;
  /** `collector`: the CloudFront stand-in in front of the collector (the collector itself takes any free port). */
  readonly ports?: Partial<Record<EmulatedService | 'api' | 'collector', number>>;
  readonly names?: ResourceNames;
  readonly shards?: number;
  readonly settings?: Partial<Settings>;
  readonly batchIntervalMs?: number;
  /** Holds every Firehose delivery this many seconds past its buffer (a lagging Firehose). @default 0 */
  readonly firehoseDelaySeconds?: number;
  /** Run the batch layer once at start-up. @default true */
  readonly runBatchAtStart?: boolean;
  /** Static files the HTTP server serves outside /v1/ (the dashboard). */
  readonly staticDir?: string;
  /**
   * The public collector (/v1/events, /pv.<version>.js) behind a CloudFront stand-in: the sites it takes page views
   * for (default 127.0.0.1 and localhost, where the demo site runs), their keep-lists, the visitor-hash key
   * (default: random for this run), the WAF rate rule (default the deployed one), the stand-in's geo database,
   * and, for tests, network faults at the edge and a wrapper around the collector's stream writer.
   */
  readonly collector?: Omit<LocalCollectorOptions, 'kinesis' | 'streamName' | 'observer' | 'port'>;
  /** Serve the demo site (pages that load the tracker) on this port; 0 picks a free one. Absent: no demo site. */
  readonly demoSitePort?: number;
  /** Endpoints of emulators already running (tests); otherwise they are started here. */
  readonly emulators?: Pick<RunningEmulators, 'endpoints' | 'region' | 'credentials'>;
  readonly log?: (line: string) => void;
  /** Called if an emulator dies while the stack runs. */
  readonly onCrash?: (service: EmulatedService, detail: string) => void;
}

export interface LocalStackStats {
  readonly eventsIn: number;
  readonly countersWritten: number;
  readonly deadLetters: number;
  /** Speed counter writes that failed (and were retried), and records set aside after a refused write. */
  readonly writeFailures: number;
  readonly writeRejected: number;
  readonly filesLanded: number;
  readonly recordsLanded: number;
  readonly batchRuns: number;
  readonly horizon: number | undefined;
  readonly apiRequests: number;
  /** What the collector did, by metric (EventsAccepted, EventsRejected, BotEventsDropped, …). */
  readonly collector: Readonly<Partial<Record<CollectorMetric, number>>>;
}

export interface LocalStack {
  readonly config: RuntimeConfig;
  readonly clients: AwsClients;
  readonly endpoints: Readonly<Record<EmulatedService, string>>;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly apiUrl: string;
  /** POST page views here (the tracker does): the CloudFront stand-in. */
  readonly collectorUrl: string;
  /** The collector itself, as its function URL is reachable: it refuses every request that skipped the edge. */
  readonly collectorOriginUrl: string;
  /** The versioned tracker URL, and the tag with its SRI hash. */
  readonly trackerUrl: string;
  readonly trackerTag: string;
  readonly edge: RunningCloudFront;
  readonly demoSiteUrl?: string;
  readonly pids: readonly number[];
  readonly esm: KinesisEventSourceMapping;
  readonly firehose: FirehoseStandIn;
  readonly notifications: S3NotificationStandIn;
  readonly scheduler: RunningScheduler;
  readonly api: RunningHttpApi;
  stats(): LocalStackStats;
  /**
   * Stops taking new work, gives the work in flight `graceMs` to finish (default: as long as it takes), then
   * abandons it and stops the emulators. Abandoning is safe: the mapping and Firehose move their checkpoints
   * only after work is confirmed, so the next start resumes there, and speed writes are idempotent.
   * Resolves with the parts whose work was abandoned.
   */
  stop(options?: { readonly graceMs?: number }): Promise<{ readonly abandoned: readonly string[] }>;
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const log = options.log ?? (() => undefined);
  let stopping = false;
  // Once stopping, failures of abandoned work are expected (the emulators are going away): not news.
  const logFailure = (line: string) => {
    if (!stopping) log(line);
  };
  const collectorSites = options.collector?.sites ?? LOCAL_COLLECTOR_SITES;
  const partial: Settings = { ...LOCAL_SETTINGS, ...options.settings };
  // The API answers for the producers' sites and the collector's, as the deployed stack does (infra/config.ts).
  const settings: Settings = {
    ...partial,
    sites: [...new Set([...partial.sites, ...collectorSites.map(siteOfEntry)])].filter(
      (site) => site !== partial.defaultSite,
    ),
  };
  const names = options.names ?? resourceNames();
  const config: RuntimeConfig = { names, settings };
  const stateDir = options.dataDir ? join(options.dataDir, 'state') : undefined;
  if (stateDir) mkdirSync(stateDir, { recursive: true });
  // Before any emulator starts, so that a taken API port costs no start-up time.
  if (options.ports?.api) await assertPortFree('api', options.ports.api);
  if (options.ports?.collector) await assertPortFree('collector', options.ports.collector);

  const started: RunningEmulators | undefined = options.emulators
    ? undefined
    : await startEmulators({
        ...(options.dataDir ? { dataDir: join(options.dataDir, 'emulators') } : {}),
        ports: {
          kinesis: options.ports?.kinesis ?? 0,
          dynamodb: options.ports?.dynamodb ?? 0,
          s3: options.ports?.s3 ?? 0,
        },
        ...(options.onCrash ? { onCrash: options.onCrash } : {}),
      });
  const emulators = options.emulators ?? started!;
  const stopEmulators = async (options?: Parameters<RunningEmulators['stop']>[0]) => started?.stop(options);
  try {
    const clients = createAwsClients(emulators);
    // An emulator that shuts down waits for every open connection, even one opened after its SIGTERM
    // (measured: kinesis-local then never exits). Once a service is closed for stopping, its requests are
    // refused here, retries of abandoned work included.
    const closed = new Set<EmulatedService>();
    for (const service of EMULATED) {
      const { middlewareStack } = clients[service] as Pick<AwsClients['kinesis'], 'middlewareStack'>;
      middlewareStack.add(
        (next) => async (args) => {
          if (closed.has(service)) throw new Error(`the local stack is stopping (${service} closed)`);
          return next(args);
        },
        { step: 'deserialize', name: 'refuseWhenStopping' },
      );
    }
    await provision(clients, names, { shards: options.shards ?? 2 });
    // The emulators are this stack's own, so no batch run is in flight: a lease in the state table was left by
    // a run that the last stop abandoned, and would hold every run back for up to its duration.
    if (started) await clearLease({ documents: clients.documents, tableName: names.tables.batchState });
    log(
      `provisioned stream ${names.stream}, tables ${Object.values(names.tables).join(', ')}, bucket ${names.bucket}`,
    );

    const counters = {
      countersWritten: 0,
      deadLetters: 0,
      writeFailures: 0,
      writeRejected: 0,
      batchRuns: 0,
      apiRequests: 0,
      horizon: undefined as number | undefined,
    };
    const observer: SpeedObserver = {
      count: (metric, value) => {
        if (metric === 'CellWrites') counters.countersWritten += value;
        if (metric === 'DeadLetterRecords') counters.deadLetters += value;
        if (metric === 'CellWriteFailures') counters.writeFailures += value;
        if (metric === 'WriteRejectedRecords') counters.writeRejected += value;
      },
      error: (message, error) =>
        logFailure(`speed: ${message}: ${error instanceof Error ? error.message : String(error)}`),
    };
    const esm = new KinesisEventSourceMapping({
      kinesis: clients.kinesis,
      streamName: names.stream,
      handler: createSpeedHandler({ clients, config, observer }),
      settings: { ...DEFAULT_SPEED_SOURCE, maxBatchingWindowSeconds: 0 },
      functionTimeoutMs: SPEED_FUNCTION_TIMEOUT_SECONDS * 1000,
      onFailure: s3OnFailureStore(clients.s3, names.bucket),
      pollIntervalMs: 250,
      region: emulators.region,
      ...(stateDir ? { stateDir } : {}),
      onError: (message, error) =>
        logFailure(
          `event source mapping: ${message}: ${error instanceof Error ? error.message : String(error)}`,
        ),
    });
    const firehose = new FirehoseStandIn({
      kinesis: clients.kinesis,
      s3: clients.s3,
      streamName: names.stream,
      bucket: names.bucket,
      bufferSeconds: settings.firehoseBufferSeconds,
      bufferBytes: settings.firehoseBufferMiB * 1024 * 1024,
      pollIntervalMs: 500,
      ...(options.firehoseDelaySeconds ? { deliveryDelaySeconds: options.firehoseDelaySeconds } : {}),
      ...(stateDir ? { stateDir } : {}),
      onError: (message, error) =>
        logFailure(`${message}: ${error instanceof Error ? error.message : String(error)}`),
    });
    const engine = createDuckDbEngine({
      s3: clients.s3,
      bucket: names.bucket,
      cacheDir: join(
        options.dataDir ?? join(process.env.TMPDIR ?? '/tmp', `pageviews-${process.pid}`),
        'parquet-cache',
      ),
    });
    // Its log says when a run starts computing, so that a stop during a run can be seen for what it is.
    // H follows what the stand-in has delivered, as it follows Firehose's metrics on AWS.
    const batchHandler = createBatchHandler({
      clients,
      config,
      engine,
      delivery: firehose.deliveryMetrics,
      log,
    });
    const catalog = createCatalogHandler({ clients, config });
    const notifications = new S3NotificationStandIn({
      s3: clients.s3,
      bucket: names.bucket,
      handler: async (event) => {
        const result = await catalog(event);
        if (result.processingFailed)
          log(`Firehose set records aside: ${event.detail.object.key} (put them back with npm run redrive)`);
        return result;
      },
      ...(stateDir ? { stateDir } : {}),
      onError: (message, error) =>
        log(`${message}: ${error instanceof Error ? error.message : String(error)}`),
    });
    const collected: Partial<Record<CollectorMetric, number>> = {};
    const collector = await startLocalCollector({
      kinesis: clients.kinesis,
      streamName: names.stream,
      ...options.collector,
      observer: {
        count: (metric, value) => (collected[metric] = (collected[metric] ?? 0) + value),
        error: (message, error) =>
          log(`collector: ${message}: ${error instanceof Error ? error.message : String(error)}`),
      },
      port: options.ports?.collector ?? 0,
    });
    const api = await startHttpApi({
      handler: createApiHandler({
        ...readersFor(clients, config),
        retentionHours: settings.speedRetentionHours,
        sites: stackSites(settings),
        onError: (error) =>
          log(`api: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`),
      }),
      port: options.ports?.api ?? 0,
      ...(options.staticDir ? { staticDir: options.staticDir } : {}),
      onRequest: () => (counters.apiRequests += 1),
    });
    let demoSite: RunningDemoSite | undefined;
    if (options.demoSitePort !== undefined) {
      demoSite = await startDemoSite({
        trackerSrc: collector.trackerUrl,
        trackerIntegrity: collector.tracker.integrity,
        port: options.demoSitePort,
      });
    }
    await esm.start();
    await firehose.start();
    notifications.start();
    let leaseExplained = false;
    const scheduler = startScheduler({
      intervalMs: options.batchIntervalMs ?? 60_000,
      runAtStart: options.runBatchAtStart ?? true,
      // S3 notifies within a second of an object landing; the stand-in's pass stands for that delivery.
      handler: async (event) => {
        await notifications.sync();
        return batchHandler(event);
      },
      onResult: (summary) => {
        counters.batchRuns += 1;
        if (summary.horizon) counters.horizon = summary.horizon.horizonMs;
        log(`batch run: ${summary.detail}`);
        // Locally only one stack uses the tables, so a held lease can only be that of a run abandoned by an
        // earlier stop of a stack on shared emulators (our own are cleared at start): explain the wait once.
        if (!leaseExplained && summary.outcome === 'skipped' && summary.detail.includes('lease')) {
          leaseExplained = true;
          log(
            `  (a run abandoned when a stack stopped holds the lease for up to ${LEASE_MS / 60_000} min; ` +
              'until then H stays put and the speed layer serves the hours after it)',
          );
        }
      },
      onError: (error) =>
        logFailure(`batch run failed: ${error instanceof Error ? error.message : String(error)}`),
    });

    return {
      config,
      clients,
      endpoints: emulators.endpoints,
      region: emulators.region,
      credentials: emulators.credentials,
      apiUrl: api.url,
      collectorUrl: collector.collectorUrl,
      collectorOriginUrl: collector.originUrl,
      trackerUrl: collector.trackerUrl,
      trackerTag: collector.trackerTag,
      edge: collector.edge,
      ...(demoSite ? { demoSiteUrl: demoSite.url } : {}),
      pids: started?.pids ?? [],
      esm,
      firehose,
      notifications,
      scheduler,
      api,
      stats: () => ({
        eventsIn: esm.stats.records,
        countersWritten: counters.countersWritten,
        deadLetters: counters.deadLetters,
        writeFailures: counters.writeFailures,
        writeRejected: counters.writeRejected,
        filesLanded: firehose.stats.objects,
        recordsLanded: firehose.stats.records,
        batchRuns: counters.batchRuns,
        horizon: counters.horizon,
        apiRequests: counters.apiRequests,
        collector: { ...collected },
      }),
      async stop({ graceMs = Infinity } = {}) {
        stopping = true;
        // kinesis-local writes the whole stream to disk as it exits, which takes seconds under load (cut short,
        // the file is torn). Nothing needs the stream once stopping: its connections close and it stops first.
        closed.add('kinesis');
        clients.kinesis.destroy();
        const streamStopped = stopEmulators({ services: ['kinesis'], graceMs: KINESIS_STOP_GRACE_MS });
        const parts: Record<string, Promise<void>> = {
          'batch run': scheduler.stop(),
          'event source mapping': esm.stop(),
          'Firehose stand-in': firehose.stop(),
          'S3 notifications': notifications.stop(),
          'HTTP API': api.close(),
          'collector and its CloudFront stand-in': collector.close(),
          ...(demoSite ? { 'demo site': demoSite.close() } : {}),
        };
        const pending = new Set(Object.keys(parts));
        const settled = Object.entries(parts).map(([name, stopped]) =>
          stopped.catch(() => undefined).finally(() => pending.delete(name)),
        );
        let deadline: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all(settled),
          new Promise((resolve) => (deadline = setTimeout(resolve, Math.min(graceMs, 2 ** 31 - 1)))),
        ]);
        clearTimeout(deadline);
        const abandoned = [...pending];
        if (abandoned.length > 0) {
          log(
            `abandoned work in flight (${abandoned.join(', ')}): the next start resumes from the checkpoints` +
              (pending.has('batch run')
                ? `; the batch run's lease keeps later runs waiting for up to ${LEASE_MS / 60_000} min`
                : ''),
          );
        }
        closed.add('dynamodb').add('s3');
        clients.destroy();
        await Promise.all([streamStopped, stopEmulators({ services: ['dynamodb', 's3'] })]);
        return { abandoned };
      },
    };
  } catch (error) {
    await stopEmulators();
    throw error;
  }
}
