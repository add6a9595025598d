import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  CreateDistributionCommand,
  GetDistributionConfigCommand,
  type CloudFrontClient,
} from '@aws-sdk/client-cloudfront';
import {
  DescribeSecretCommand,
  ResourceNotFoundException,
  RotateSecretCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { ORIGIN_VERIFY_HEADER } from '../../../shared/collection/edge.js';
import { freePort } from '../../../local/ports.js';

/**
 * moto_server (moto 5, on PATH on these machines) for the services no emulator of the local stack plays:
 * Athena's API (query state and results, not SQL: DuckDB runs the SQL locally), Secrets Manager and CloudFront's
 * API (distribution configurations, no edge).
 */
export interface RunningMoto {
  readonly endpoint: string;
  stop(): Promise<void>;
}

export async function startMoto(): Promise<RunningMoto> {
  const port = await freePort();
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let attempt = 0; ; attempt += 1) {
    try {
      if ((await fetch(`${endpoint}/moto-api/`)).ok) break;
    } catch {
      // not listening yet
    }
    if (attempt > 150 || child.exitCode !== null) throw new Error('moto_server did not start');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    endpoint,
    async stop() {
      if (child.exitCode !== null) return;
      // moto's server catches SIGTERM and may wait for idle keep-alive connections: give it a moment, then kill.
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/**
 * A distribution shaped like the collector's (infra/collection-layer.ts): a custom origin, the collector's function
 * URL, to which CloudFront adds the origin secret as a custom header. Returns its id.
 */
export async function createOriginDistribution(
  cloudfront: CloudFrontClient,
  originSecret: string,
): Promise<string> {
  const origin = 'collector';
  const { Distribution } = await cloudfront.send(
    new CreateDistributionCommand({
      DistributionConfig: {
        CallerReference: randomUUID(),
        Comment: 'Page-view collector and tracker script',
        Enabled: true,
        Origins: {
          Quantity: 1,
          Items: [
            {
              Id: origin,
              DomainName: 'abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws',
              CustomOriginConfig: { HTTPPort: 80, HTTPSPort: 443, OriginProtocolPolicy: 'https-only' },
              CustomHeaders: {
                Quantity: 1,
                Items: [{ HeaderName: ORIGIN_VERIFY_HEADER, HeaderValue: originSecret }],
              },
            },
          ],
        },
        DefaultCacheBehavior: {
          TargetOriginId: origin,
          ViewerProtocolPolicy: 'redirect-to-https',
          // CachingOptimized, the managed policy the tracker's behaviour uses.
          CachePolicyId: '658327ea-f89d-4fab-a63d-7e88639e58f6',
        },
      },
    }),
  );
  return Distribution!.Id!;
}

/** The origin secret's values on the distribution's origins, as CloudFront would send them. */
export async function originHeaderValues(
  cloudfront: CloudFrontClient,
  distributionId: string,
): Promise<string[]> {
  const { DistributionConfig } = await cloudfront.send(
    new GetDistributionConfigCommand({ Id: distributionId }),
  );
  return (DistributionConfig?.Origins?.Items ?? []).flatMap((origin) =>
    (origin.CustomHeaders?.Items ?? [])
      .filter((header) => header.HeaderName === ORIGIN_VERIFY_HEADER)
      .map((header) => header.HeaderValue ?? ''),
  );
}

/**
 * Starts a rotation as Secrets Manager does before it invokes the rotation function (RotateSecret, API reference:
 * rotation on, and a new version labelled AWSPENDING that has no value yet, "an empty secret version" until
 * createSecret stores one). Returns that version's id, the ClientRequestToken of the steps.
 *
 * moto records exactly that state and then looks for the rotation function to invoke, which it cannot run here: it
 * answers ResourceNotFoundException for a function it does not have, and the test invokes the steps itself. The
 * state is checked, so that a moto that behaves otherwise fails here, not in a later step.
 */
export async function startRotation(secretsManager: SecretsManagerClient, secretId: string): Promise<string> {
  const token = randomUUID();
  try {
    await secretsManager.send(
      new RotateSecretCommand({
        SecretId: secretId,
        ClientRequestToken: token,
        RotationLambdaARN: 'arn:aws:lambda:us-east-1:123456789012:function:rotation-invoked-by-the-test',
        RotationRules: { AutomaticallyAfterDays: 30 },
      }),
    );
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
  const described = await secretsManager.send(new DescribeSecretCommand({ SecretId: secretId }));
  if (described.RotationEnabled !== true || described.VersionIdsToStages?.[token]?.join() !== 'AWSPENDING') {
    throw new Error(`RotateSecret did not leave a pending version ${token}: ${JSON.stringify(described)}`);
  }
  return token;
}
