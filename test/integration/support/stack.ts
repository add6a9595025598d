import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { createAwsClients, type AwsClients } from '../../../shared/aws-clients.js';
import {
  DEFAULT_SETTINGS,
  resourceNames,
  type ResourceNames,
  type RuntimeConfig,
  type Settings,
} from '../../../shared/resources.js';
import { FirehoseStandIn, type FlushResult } from '../../../local/firehose.js';
import { provision } from '../../../local/provision.js';

/** A provisioned set of resources with names of its own, on the emulators the global setup started. */
export interface TestStack {
  readonly clients: AwsClients;
  readonly names: ResourceNames;
  readonly config: RuntimeConfig;
  readonly endpoints: { kinesis: string; dynamodb: string; s3: string };
  destroy(): void;
}

/** Resource names unique to one test: `t-<name>-<random>`. */
export function isolatedNames(name: string): ResourceNames {
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, 16)
    .replace(/-+$/, '');
  return resourceNames(`t-${slug}-${randomBytes(3).toString('hex')}`);
}

export async function testStack(
  name: string,
  options: { shards?: number; settings?: Partial<Settings> } = {},
): Promise<TestStack> {
  const emulators = inject('emulators');
  const clients = createAwsClients(emulators);
  const names = isolatedNames(name);
  await provision(clients, names, { shards: options.shards ?? 1 });
  return {
    clients,
    names,
    config: { names, settings: { ...DEFAULT_SETTINGS, ...options.settings } },
    endpoints: emulators.endpoints,
    destroy: () => clients.destroy(),
  };
}

/**
 * Lands everything on the stack's stream in S3 through the Firehose stand-in, with buffers large enough
 * that only draining flushes. Pass a `stateDir` to keep checkpoints between landings.
 */
export async function landOnS3(stack: TestStack, options: { stateDir?: string } = {}): Promise<FlushResult> {
  const firehose = new FirehoseStandIn({
    kinesis: stack.clients.kinesis,
    s3: stack.clients.s3,
    streamName: stack.names.stream,
    bucket: stack.names.bucket,
    bufferSeconds: 3600,
    bufferBytes: 64 << 20,
    pollIntervalMs: 50,
    ...options,
  });
  await firehose.start();
  try {
    return await firehose.drain();
  } finally {
    await firehose.stop();
  }
}
