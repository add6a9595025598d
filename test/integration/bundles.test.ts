import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateWorkGroupCommand,
  GetQueryExecutionCommand,
  ListQueryExecutionsCommand,
} from '@aws-sdk/client-athena';
import { PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { objectCreatedEvent } from '../../lambdas/catalog/handler.js';
import { ORIGIN_VERIFY_HEADER } from '../../shared/collection/edge.js';
import { apiEvent } from '../../local/api-events.js';
import { kinesisEvent, KinesisRecordBuilder } from '../../local/kinesis-records.js';
import { LOCAL_CREDENTIALS } from '../../local/emulators.js';
import { provision } from '../../local/provision.js';
import { createAwsClients, type AwsClients } from '../../shared/aws-clients.js';
import { markLanded } from '../../shared/batch/catalog.js';
import type { FunctionName } from '../../shared/call-ledger.js';
import { encodePageView } from '../../shared/event.js';
import { speedPartitionKey } from '../../shared/keys.js';
import { DELIVERY_STREAM_ENV, DEFAULT_SETTINGS } from '../../shared/resources.js';
import { loadSql } from '../../shared/sql/index.js';
import { hourPartitionPath, HOUR_MS, MINUTE_MS } from '../../shared/time.js';
import { localSecretName, StackModel } from '../support/aws-fidelity/stack-model.js';
import type { CfnTemplate } from '../support/aws-fidelity/template.js';
import { createOriginDistribution, startRotation, startMoto, type RunningMoto } from './support/moto.js';

/**
 * The code that deploys, not the TypeScript sources: `cdk synth` bundles every function into cdk.out (esbuild,
 * as on a deployment), and each bundle is imported in a Node process of its own and runs one real event
 * against the emulators, with the environment the template gives it. Only endpoints are overridden, and what names
 * moto's resources (Secrets Manager and CloudFront are moto's here, which names its own ARNs and ids): the
 * collector's two secret ARNs, the rotation's distribution id. A module missing from a bundle, a file not copied
 * beside it (the batch SQL) or an environment variable the template forgets fails here.
 */

const SITE = 'example.com';

function run(
  bundle: string,
  environment: Record<string, string>,
  event: unknown,
): Promise<{ code: number | null; result: unknown; stderr: string }> {
  // The answer goes to fd 3: stdout carries the function's EMF metrics and logs, as on Lambda.
  const script = `
    import { writeSync } from 'node:fs';
    const { handler } = await import(${JSON.stringify(`${bundle}/index.mjs`)});
    const context = { functionName: 'bundle', awsRequestId: 'r', getRemainingTimeInMillis: () => 600000 };
    const result = await handler(JSON.parse(process.env.BUNDLE_EVENT), context);
    writeSync(3, JSON.stringify(result ?? null));
    // Lambda freezes the process after the answer; here keep-alive sockets would hold it open.
    process.exit(0);`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...environment, BUNDLE_EVENT: JSON.stringify(event) },
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    });
    let answer = '';
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdio[3]!.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    child.on('close', (code) => {
      let result: unknown;
      try {
        result = answer ? JSON.parse(answer) : undefined;
      } catch {
        result = answer;
      }
      resolve({ code, result, stderr });
    });
  });
}

function synth(outdir: string, prefix: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'npx',
      [
        'cdk',
        'synth',
        '--quiet',
        '-o',
        outdir,
        '-c',
        `namesPrefix=${prefix}`,
        '-c',
        `collectorSites=${SITE}`,
      ],
      { env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`cdk synth failed: ${stderr}`))));
  });
}

describe('the bundled functions in cdk.out', () => {
  let outdir: string;
  let template: CfnTemplate;
  let stack: StackModel;
  let moto: RunningMoto;
  let clients: AwsClients;
  let secrets: SecretsManagerClient;
  let visitorKeyArn: string;
  let originSecretArn: string;
  const originSecret = randomBytes(32).toString('base64url');
  let distributionId: string;
  const now = Date.now();

  beforeAll(async () => {
    outdir = mkdtempSync(join(tmpdir(), 'cdk-bundles-'));
    const prefix = `b-${randomBytes(3).toString('hex')}`;
    [moto] = await Promise.all([startMoto(), synth(outdir, prefix)]);
    template = JSON.parse(readFileSync(join(outdir, 'PageViews.template.json'), 'utf8')) as CfnTemplate;
    stack = new StackModel(template);
    const emulators = inject('emulators');
    clients = createAwsClients({
      ...emulators,
      endpoints: {
        ...emulators.endpoints,
        athena: moto.endpoint,
        secretsmanager: moto.endpoint,
        cloudfront: moto.endpoint,
        cloudwatch: moto.endpoint,
      },
    });
    // The resources under the names the template gives the functions.
    const { names } = stack.configOf('speed');
    await provision(clients, names, { shards: 1 });
    await clients.athena.send(
      new CreateWorkGroupCommand({
        Name: names.athenaWorkgroup,
        Configuration: { ResultConfiguration: { OutputLocation: `s3://${names.bucket}/athena-results/` } },
      }),
    );
    secrets = clients.secretsManager;
    const secret = async (name: string, value: string) =>
      (await secrets.send(new CreateSecretCommand({ Name: name, SecretString: value }))).ARN!;
    visitorKeyArn = await secret(localSecretName(prefix, 'visitorKey'), 'k'.repeat(64));
    originSecretArn = await secret(localSecretName(prefix, 'originSecret'), originSecret);
    distributionId = await createOriginDistribution(clients.cloudfront, originSecret);
  }, 600_000);
  afterAll(async () => {
    clients?.destroy();
    await moto?.stop();
    if (outdir) rmSync(outdir, { recursive: true, force: true });
  });

  /** What names moto's resources instead of the template's. */
  const motoNames = (): Partial<Record<FunctionName, Record<string, string>>> => ({
    collect: { VISITOR_KEY_SECRET_ARN: visitorKeyArn, ORIGIN_SECRET_ARN: originSecretArn },
    'origin-secret': { COLLECTOR_DISTRIBUTION_ID: distributionId },
  });

  /** The function's template environment, endpoints pointed at the emulators, credentials the emulators take. */
  function environmentOf(fn: FunctionName): Record<string, string> {
    const { endpoints, region } = inject('emulators');
    const overrides = motoNames()[fn] ?? {};
    // Only names the template sets are replaced: a variable the template forgets still fails the bundle.
    expect(Object.keys(overrides).filter((name) => !(name in stack.functions[fn].environment))).toEqual([]);
    return {
      ...stack.functions[fn].environment,
      ...overrides,
      PATH: process.env.PATH ?? '',
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_KINESIS: endpoints.kinesis,
      AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
      AWS_ENDPOINT_URL_S3: endpoints.s3,
      AWS_ENDPOINT_URL_ATHENA: moto.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: moto.endpoint,
      AWS_ENDPOINT_URL_CLOUDFRONT: moto.endpoint,
      AWS_ENDPOINT_URL_CLOUDWATCH: moto.endpoint,
      // The bundles record their calls too (shared/call-ledger.ts is bundled into each).
      ...(process.env.PAGEVIEWS_CALL_LEDGER
        ? { PAGEVIEWS_CALL_LEDGER: process.env.PAGEVIEWS_CALL_LEDGER }
        : {}),
    };
  }

  const bundleOf = (fn: FunctionName) => {
    const metadata = template.Resources[stack.functionId(fn)]!.Metadata as Record<string, string>;
    return join(outdir, metadata['aws:asset:path']!);
  };

  const view = (created: number) => ({
    created,
    url: `https://${SITE}/bundled`,
    status: 200,
    country: 'DE',
    browser: 'FF',
    userId: 'u-1',
    site: DEFAULT_SETTINGS.defaultSite,
  });

  it('speed: counts a Kinesis batch into the counters table', async () => {
    const records = new KinesisRecordBuilder();
    const { code, result, stderr } = await run(
      bundleOf('speed'),
      environmentOf('speed'),
      kinesisEvent([records.record(view(now)), records.record(view(now))]),
    );
    expect(code, stderr).toBe(0);
    expect(result).toEqual({ batchItemFailures: [] });
    const { Items } = await clients.documents.send(
      new QueryCommand({
        TableName: stack.configOf('speed').names.tables.speed,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': speedPartitionKey(DEFAULT_SETTINGS.defaultSite, 'total', now) },
      }),
    );
    expect(Items?.length).toBeGreaterThan(0);
  });

  it('ingest: transforms a Firehose batch, partition keys and rejections included', async () => {
    const data = (payload: string) => Buffer.from(payload).toString('base64');
    const { code, result, stderr } = await run(bundleOf('ingest'), environmentOf('ingest'), {
      invocationId: 'i',
      deliveryStreamArn: 'arn:aws:firehose:us-east-1:123456789012:deliverystream/d',
      region: 'us-east-1',
      records: [
        {
          recordId: 'ok',
          approximateArrivalTimestamp: now,
          data: data(encodePageView(view(now))),
          kinesisRecordMetadata: {
            shardId: 'shardId-000000000000',
            partitionKey: 'p',
            approximateArrivalTimestamp: now,
            sequenceNumber: '1',
            subsequenceNumber: '',
          },
        },
        {
          recordId: 'bad',
          approximateArrivalTimestamp: now,
          data: data('not json'),
          kinesisRecordMetadata: {
            shardId: 'shardId-000000000000',
            partitionKey: 'p',
            approximateArrivalTimestamp: now,
            sequenceNumber: '2',
            subsequenceNumber: '',
          },
        },
      ],
    });
    expect(code, stderr).toBe(0);
    const { records } = result as { records: { recordId: string; result: string; metadata?: unknown }[] };
    expect(records.map((r) => [r.recordId, r.result])).toEqual([
      ['ok', 'Ok'],
      ['bad', 'ProcessingFailed'],
    ]);
    expect(records[0]!.metadata).toMatchObject({
      partitionKeys: { dt: expect.any(String), hour: expect.any(String) },
    });
  });

  it('catalog: marks the hour of a landed raw object dirty', async () => {
    const { names } = stack.configOf('catalog');
    const { code, result, stderr } = await run(
      bundleOf('catalog'),
      environmentOf('catalog'),
      objectCreatedEvent(names.bucket, `raw/${hourPartitionPath(now - 3 * HOUR_MS)}/part.parquet`),
    );
    expect(code, stderr).toBe(0);
    expect(result).toEqual({ hoursMarked: 1, processingFailed: false });
  });

  it('batch: runs the SQL copied beside it as an Athena query and publishes H', async () => {
    const { names } = stack.configOf('batch');
    await markLanded(
      { documents: clients.documents, tableName: names.tables.batchState },
      [`raw/${hourPartitionPath(now - 2 * HOUR_MS)}/part.parquet`],
      now,
    );
    // Firehose's delivery metrics, as it publishes them on AWS: everything read a minute ago has landed.
    const environment = environmentOf('batch');
    const metric = (MetricName: string, Value: number) => ({
      MetricName,
      Dimensions: [{ Name: 'DeliveryStreamName', Value: environment[DELIVERY_STREAM_ENV] }],
      Timestamp: new Date(Date.now() - MINUTE_MS),
      Value,
    });
    await clients.cloudwatch.send(
      new PutMetricDataCommand({
        Namespace: 'AWS/Firehose',
        MetricData: [
          metric('DeliveryToS3.DataFreshness', 60),
          metric('KinesisMillisBehindLatest', 0),
          metric('DataReadFromKinesisStream.Records', 10),
        ],
      }),
    );
    const { code, result, stderr } = await run(bundleOf('batch'), environment, {
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      detail: {},
    });
    expect(code, stderr).toBe(0);
    // The watermark let the hour through, and the bundle's SQL, copied beside it, reached Athena in the
    // function's workgroup. moto runs no SQL and writes no result file (Athena writes `<id>.csv` under the
    // workgroup's location; athena-engine.test.ts plays that), so the run stops at reading the result and keeps
    // the day for a later run, as it does for any failing day.
    // (The catalog test's hour is dirty too: one query per day of dirty hours.)
    const { failedHours } = result as { failedHours: number };
    expect(result, stderr).toMatchObject({ outcome: 'published' });
    expect(failedHours).toBeGreaterThan(0);
    const { QueryExecutionIds = [] } = await clients.athena.send(
      new ListQueryExecutionsCommand({ WorkGroup: names.athenaWorkgroup }),
    );
    expect(QueryExecutionIds.length).toBeGreaterThan(0);
    for (const id of QueryExecutionIds) {
      const { QueryExecution } = await clients.athena.send(
        new GetQueryExecutionCommand({ QueryExecutionId: id }),
      );
      expect(QueryExecution?.Query).toBe(loadSql('hourly_views'));
    }
  });

  it('api: answers /v1/status from the state table', async () => {
    const { code, result, stderr } = await run(bundleOf('api'), environmentOf('api'), apiEvent('/v1/status'));
    expect(code, stderr).toBe(0);
    const { statusCode, body } = result as { statusCode: number; body: string };
    expect(statusCode).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ versions: { api: expect.any(String) } });
  });

  it('collect: reads its secrets from Secrets Manager and puts a page view that carries the origin secret on the stream', async () => {
    const event = {
      ...apiEvent('/v1/events', {}, 'POST'),
      headers: {
        origin: `https://${SITE}`,
        'content-type': 'application/json',
        'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
        [ORIGIN_VERIFY_HEADER]: originSecret,
      },
      body: JSON.stringify({ url: `https://${SITE}/collected` }),
    };
    const { code, result, stderr } = await run(bundleOf('collect'), environmentOf('collect'), event);
    expect(code, stderr).toBe(0);
    const { statusCode, body } = result as { statusCode: number; body: string };
    expect(statusCode, body).toBe(202);
    expect((JSON.parse(body) as { accepted: unknown[] }).accepted).toHaveLength(1);
  });

  it('origin-secret: the createSecret step of a rotation stores a new pending value, the current one untouched', async () => {
    const token = await startRotation(secrets, originSecretArn);
    const { code, stderr } = await run(bundleOf('origin-secret'), environmentOf('origin-secret'), {
      Step: 'createSecret',
      SecretId: originSecretArn,
      ClientRequestToken: token,
    });
    expect(code, stderr).toBe(0);
    const { VersionIdsToStages } = await secrets.send(
      new DescribeSecretCommand({ SecretId: originSecretArn }),
    );
    expect(VersionIdsToStages?.[token]).toEqual(['AWSPENDING']);
    const value = (stage: string) =>
      secrets
        .send(new GetSecretValueCommand({ SecretId: originSecretArn, VersionStage: stage }))
        .then((r) => r.SecretString);
    expect(await value('AWSCURRENT')).toBe(originSecret);
    expect(await value('AWSPENDING')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
