import { Agent } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import { AthenaClient } from '@aws-sdk/client-athena';
import { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { recordCalls } from './call-ledger.js';

/**
 * The one factory for AWS SDK v3 clients. Endpoint overrides come from `AWS_ENDPOINT_URL` or the
 * per-service `AWS_ENDPOINT_URL_<SERVICE>` variables (the SDK's own convention), so the same code talks
 * to AWS, LocalStack or the embedded emulators.
 */

export const SERVICES = [
  'kinesis',
  'dynamodb',
  's3',
  'athena',
  'secretsmanager',
  'cloudfront',
  'cloudwatch',
] as const;
export type Service = (typeof SERVICES)[number];

/** The SDK's name of a service in `AWS_ENDPOINT_URL_<SERVICE>`, where it is not the upper-cased id. */
const ENDPOINT_VARIABLE: Partial<Record<Service, string>> = { secretsmanager: 'SECRETS_MANAGER' };

export interface ClientOptions {
  readonly region?: string;
  /** Explicit endpoints; otherwise read from the environment. */
  readonly endpoints?: Partial<Record<Service, string>>;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** SDK retry attempts (standard mode). @default 3 */
  readonly maxAttempts?: number;
  /** Sockets per client; DynamoDB writes of a batch run in parallel. @default 50 */
  readonly maxSockets?: number;
}

export interface AwsClients {
  readonly kinesis: KinesisClient;
  readonly dynamodb: DynamoDBClient;
  readonly documents: DynamoDBDocumentClient;
  readonly s3: S3Client;
  readonly athena: AthenaClient;
  readonly secretsManager: SecretsManagerClient;
  readonly cloudfront: CloudFrontClient;
  /** Read by the batch function only: Firehose's delivery metrics (shared/batch/delivery.ts). */
  readonly cloudwatch: CloudWatchClient;
  /** The endpoint override in force for a service, if any. */
  endpoint(service: Service): string | undefined;
  destroy(): void;
}

export function endpointFromEnvironment(
  service: Service,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const name = ENDPOINT_VARIABLE[service] ?? service.toUpperCase();
  return env[`AWS_ENDPOINT_URL_${name}`] || env.AWS_ENDPOINT_URL || undefined;
}

function httpHandler(maxSockets: number): NodeHttpHandler {
  // HTTP/1.1 with keep-alive: kinesis-mock fails with the SDK's HTTP/2 handler, and reuse matters everywhere.
  return new NodeHttpHandler({
    httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
    httpsAgent: new Agent({ keepAlive: true, maxSockets }),
  });
}

/** Creates a fresh set of clients (lazily: a Lambda builds only the ones it uses). */
export function createAwsClients(
  options: ClientOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): AwsClients {
  const region = options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const endpoint = (service: Service) =>
    options.endpoints?.[service] ?? endpointFromEnvironment(service, env);
  const base = (service: Service) => ({
    region,
    maxAttempts: options.maxAttempts ?? 3,
    requestHandler: httpHandler(options.maxSockets ?? 50),
    ...(endpoint(service) ? { endpoint: endpoint(service) } : {}),
    // A copy: the SDK marks credential objects it uses (a `$source` field), and callers' objects are shared.
    ...(options.credentials ? { credentials: { ...options.credentials } } : {}),
  });
  // The call ledger (shared/call-ledger.ts) records each client's calls when the tests turn it on. The document
  // client shares the DynamoDB client's middleware, so it is recorded there.
  const made = new Map<Service | 'documents', { destroy(): void }>();
  const once = <T extends { destroy(): void }>(key: Service | 'documents', make: () => T): T => {
    if (!made.has(key)) made.set(key, make());
    return made.get(key) as T;
  };
  const clients: AwsClients = {
    get kinesis() {
      return once('kinesis', () => recordCalls(new KinesisClient(base('kinesis')), 'kinesis'));
    },
    get dynamodb() {
      return once('dynamodb', () => recordCalls(new DynamoDBClient(base('dynamodb')), 'dynamodb'));
    },
    get documents() {
      return once('documents', () =>
        DynamoDBDocumentClient.from(clients.dynamodb, { marshallOptions: { removeUndefinedValues: true } }),
      );
    },
    get s3() {
      // Emulators serve buckets by path, not by virtual host.
      return once('s3', () =>
        recordCalls(new S3Client({ ...base('s3'), forcePathStyle: Boolean(endpoint('s3')) }), 's3'),
      );
    },
    get athena() {
      return once('athena', () => recordCalls(new AthenaClient(base('athena')), 'athena'));
    },
    get secretsManager() {
      return once('secretsmanager', () =>
        recordCalls(new SecretsManagerClient(base('secretsmanager')), 'secretsmanager'),
      );
    },
    get cloudfront() {
      return once('cloudfront', () => recordCalls(new CloudFrontClient(base('cloudfront')), 'cloudfront'));
    },
    get cloudwatch() {
      return once('cloudwatch', () => recordCalls(new CloudWatchClient(base('cloudwatch')), 'cloudwatch'));
    },
    endpoint,
    destroy() {
      for (const client of made.values()) client.destroy();
      made.clear();
    },
  };
  return clients;
}

let processClients: AwsClients | undefined;

/** The process-wide clients, created on first use and reused across warm Lambda invocations. */
export function awsClients(): AwsClients {
  processClients ??= createAwsClients();
  return processClients;
}
