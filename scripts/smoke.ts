import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type { PageViewsResponse } from '../shared/api-types.js';
import { createAwsClients, type AwsClients } from '../shared/aws-clients.js';
import { putRecordsReliably } from '../shared/kinesis-producer.js';
import { minuteBucket } from '../shared/time.js';
import { clientOptionsFor, requireLocalStack } from '../local/stack-file.js';
import { parseNumber, runCli, UsageError } from '../tools/cli.js';
import { apiRegion, signedGet } from '../tools/signed-fetch.js';

/**
 * `npm run smoke -- --stack <name>`: end-to-end check of a deployed stack. Reads the stack's outputs, puts
 * `--count` page views (100) with known eventIds on its stream, and polls the signed query API until the speed
 * layer has counted exactly those, printing what it saw and how long it took. Exits 1 on any shortfall (or
 * excess) when `--timeout` seconds (120) have passed. Without `--stack` it checks the running local stack
 * (.local/stack.json) the same way, which is how the tests run it.
 */

interface Target {
  readonly description: string;
  readonly streamName: string;
  readonly apiUrl: string;
  readonly clients: AwsClients;
  /** GET on the API: signed for a deployed stack, plain for the local one. */
  get(url: URL): Promise<Response>;
}

export class SmokeFailure extends Error {
  override readonly name = 'SmokeFailure';
  readonly exitCode = 1;
}

async function deployedTarget(stackName: string, region: string | undefined): Promise<Target> {
  const cloudformation = new CloudFormationClient(region ? { region } : {});
  const { Stacks } = await cloudformation.send(new DescribeStacksCommand({ StackName: stackName }));
  cloudformation.destroy();
  const outputs = Object.fromEntries((Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]));
  const { StreamName: streamName, ApiUrl: apiUrl } = outputs;
  if (!streamName || !apiUrl) throw new UsageError(`stack ${stackName} has no StreamName and ApiUrl outputs`);
  const apiRegionName = apiRegion(new URL(apiUrl)) ?? region;
  if (!apiRegionName) throw new UsageError('could not tell the region from the ApiUrl output: pass --region');
  return {
    description: `stack ${stackName}`,
    streamName,
    apiUrl,
    clients: createAwsClients({ region: apiRegionName }),
    get: (url) => signedGet(url, apiRegionName),
  };
}

function localTarget(): Target {
  const stack = requireLocalStack(' (or pass --stack <name> for a deployed stack)');
  if (!stack.apiUrl)
    throw new UsageError('the local stack has no API URL yet: wait for `npm start` to finish starting');
  return {
    description: `the local stack (pid ${stack.pid})`,
    streamName: stack.names.stream,
    apiUrl: stack.apiUrl,
    clients: createAwsClients(clientOptionsFor(stack)),
    get: (url) => fetch(url),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      stack: { type: 'string' },
      region: { type: 'string' },
      count: { type: 'string' },
      timeout: { type: 'string' },
    },
  });
  const count = parseNumber(values.count, '--count', { min: 1, max: 100 }) ?? 100;
  const timeoutMs = (parseNumber(values.timeout, '--timeout', { min: 1, max: 3600 }) ?? 120) * 1000;
  const target = values.stack ? await deployedTarget(values.stack, values.region) : localTarget();
  const write = (line: string) => process.stdout.write(`${line}\n`);
  try {
    const run = randomBytes(6).toString('hex');
    // One minute, one url of its own: the breakdown of that minute isolates these page views from other traffic.
    const createdMs = Date.now();
    const url = `https://smoke.example/${run}`;
    const events = Array.from({ length: count }, (_, i) => ({
      created: createdMs,
      url,
      status: 200,
      country: 'ZZ',
      browser: 'smoke',
      userId: `smoke-${run}`,
      eventId: `smoke-${run}-${i}`,
    }));
    write(
      `smoke test of ${target.description}: ${count} page views of ${url} on stream ${target.streamName}`,
    );
    const started = Date.now();
    await putRecordsReliably(
      target.clients.kinesis,
      target.streamName,
      events.map((event) => ({ data: Buffer.from(JSON.stringify(event)), partitionKey: event.eventId })),
    );
    write(`put ${count} records in ${Date.now() - started} ms`);

    const minute = minuteBucket(createdMs);
    const query = new URL('/v1/pageviews', target.apiUrl.replace(/\/?$/, '/'));
    query.search = new URLSearchParams({
      from: new Date(minute).toISOString(),
      to: new Date(minute + 60_000).toISOString(),
      granularity: 'minute',
      by: 'url',
      top: '100',
    }).toString();
    let seen = 0;
    let lastStatus = '';
    while (Date.now() - started < timeoutMs) {
      const response = await target.get(query);
      lastStatus = `${response.status} ${response.statusText}`;
      if (response.ok) {
        const answer = (await response.json()) as PageViewsResponse;
        seen = answer.breakdown?.find((row) => row.value === url)?.total ?? 0;
        if (seen >= count) break;
      } else {
        await response.body?.cancel();
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const elapsed = ((Date.now() - started) / 1000).toFixed(1);
    write(`the API counted ${seen} of ${count} page views after ${elapsed} s (last answer: ${lastStatus})`);
    if (seen !== count) {
      throw new SmokeFailure(
        seen < count
          ? `${count - seen} page views were not counted within ${timeoutMs / 1000} s`
          : `${seen - count} page views were counted more than once`,
      );
    }
    write('smoke test passed');
  } finally {
    target.clients.destroy();
  }
}

runCli(main);
