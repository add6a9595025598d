import { randomBytes } from 'node:crypto';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { createCollector, EVENTS_PATH, type CollectorObserver } from '../shared/collection/collector.js';
import { DEFAULT_RATE_RULE } from '../shared/collection/edge.js';
import { createCollectHandler } from '../lambdas/collect/handler.js';
import { fixedOriginSecret } from '../shared/collection/origin-verify.js';
import { DEFAULT_SETTINGS } from '../shared/resources.js';
import { SiteAllowList, type KeepParameters } from '../shared/collection/sites.js';
import { putRecordsWriter, type EventStreamWriter } from '../shared/collection/stream-writer.js';
import { buildTracker } from '../shared/collection/tracker.js';
import { trackerAsset, trackerScriptTag, type TrackerAsset } from '../shared/collection/tracker-asset.js';
import {
  startCloudFrontStandIn,
  type EdgeFault,
  type RunningCloudFront,
  type ViewerRequest,
} from './cloudfront.js';
import { startHttpApi, type RunningHttpApi } from './http-server.js';

/**
 * The public collector as deployed, on one machine: the collector handler on an address of its own (its Lambda
 * function URL, reachable directly like one) behind the CloudFront stand-in, which alone knows the origin secret.
 */

export interface LocalCollectorOptions {
  readonly kinesis: KinesisClient;
  readonly streamName: string;
  /** Sites it takes page views for (allow-list entries). @default LOCAL_COLLECTOR_SITES */
  readonly sites?: readonly string[];
  readonly keepParameters?: KeepParameters;
  /** @default random for this run */
  readonly visitorKey?: string;
  /** The WAF rate rule. @default the deployed one */
  readonly rateRule?: { readonly limit: number; readonly windowSeconds: number };
  /** The stand-in's geo database. @default none: no country header, so country ZZ */
  readonly countryOf?: (ip: string) => string | undefined;
  /** Tests: network faults at the edge, and a wrapper around the stream writer (to refuse chosen records). */
  readonly faults?: (request: ViewerRequest) => EdgeFault;
  readonly wrapWriter?: (writer: EventStreamWriter) => EventStreamWriter;
  readonly observer?: CollectorObserver;
  /** Port of the CloudFront stand-in. @default any free one */
  readonly port?: number;
  readonly clock?: () => number;
}

export interface LocalCollector {
  /** `POST` page views here: through the edge. */
  readonly collectorUrl: string;
  /** The collector itself, as its function URL is reachable. */
  readonly originUrl: string;
  readonly tracker: TrackerAsset;
  readonly trackerUrl: string;
  readonly trackerTag: string;
  readonly edge: RunningCloudFront;
  readonly origin: RunningHttpApi;
  close(): Promise<void>;
}

/**
 * The local demo's allow-list: the machine under either name, both counting for the default site, so that a local
 * stack has one site unless it is given more (docs/sites.md).
 */
export const LOCAL_COLLECTOR_SITES = ['127.0.0.1', 'localhost'].map(
  (host) => `${host}=${DEFAULT_SETTINGS.defaultSite}`,
);

export async function startLocalCollector(options: LocalCollectorOptions): Promise<LocalCollector> {
  const originSecret = randomBytes(32).toString('base64url');
  const tracker = trackerAsset(buildTracker().script);
  const writer = putRecordsWriter(options.kinesis, options.streamName);
  const collect = createCollectHandler(
    createCollector({
      writer: options.wrapWriter?.(writer) ?? writer,
      config: {
        sites: new SiteAllowList(options.sites ?? LOCAL_COLLECTOR_SITES, options.keepParameters),
        visitorKey: options.visitorKey ?? randomBytes(32).toString('base64'),
        origin: fixedOriginSecret(originSecret),
        trackerScript: tracker.script,
      },
      ...(options.observer ? { observer: options.observer } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
    }),
  );
  const origin = await startHttpApi({ handler: collect });
  try {
    const edge = await startCloudFrontStandIn({
      origin: origin.url,
      originSecret: () => originSecret,
      rateRule: options.rateRule ?? DEFAULT_RATE_RULE,
      ...(options.countryOf ? { countryOf: options.countryOf } : {}),
      ...(options.faults ? { faults: options.faults } : {}),
      port: options.port ?? 0,
    });
    return {
      collectorUrl: `${edge.url}${EVENTS_PATH}`,
      originUrl: origin.url,
      tracker,
      trackerUrl: `${edge.url}${tracker.path}`,
      trackerTag: trackerScriptTag(edge.url, tracker),
      edge,
      origin,
      close: async () => {
        await edge.close();
        await origin.close();
      },
    };
  } catch (error) {
    await origin.close();
    throw error;
  }
}
