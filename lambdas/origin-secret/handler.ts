import { Logger } from '@aws-lambda-powertools/logger';
import {
  GetDistributionConfigCommand,
  UpdateDistributionCommand,
  type CloudFrontClient,
} from '@aws-sdk/client-cloudfront';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  UpdateSecretVersionStageCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { awsClients, type AwsClients } from '../../shared/aws-clients.js';
import { runAs } from '../../shared/call-ledger.js';
import { ORIGIN_VERIFY_HEADER } from '../../shared/collection/edge.js';
import { distributionIdFromEnvironment } from '../../shared/collection/rotation-config.js';
import {
  rotateOriginSecret,
  type OriginHeader,
  type RotationDeps,
  type RotationStep,
  type SecretVersions,
} from '../../shared/collection/rotation.js';

/** Secrets Manager's rotation event (Secrets Manager user guide, "Lambda rotation functions"). */
export interface RotationEvent {
  readonly Step: RotationStep;
  readonly SecretId: string;
  readonly ClientRequestToken: string;
}

/** The secret's versions through Secrets Manager. */
export function secretsManagerVersions(client: SecretsManagerClient, secretId: string): SecretVersions {
  return {
    async describe() {
      const described = await client.send(new DescribeSecretCommand({ SecretId: secretId }));
      return {
        rotationEnabled: described.RotationEnabled === true,
        versions: described.VersionIdsToStages ?? {},
      };
    },
    async pendingValue(versionId) {
      try {
        const { SecretString } = await client.send(
          new GetSecretValueCommand({ SecretId: secretId, VersionId: versionId, VersionStage: 'AWSPENDING' }),
        );
        return SecretString;
      } catch (error) {
        if (error instanceof ResourceNotFoundException) return undefined;
        throw error;
      }
    },
    async putPending(versionId, value) {
      await client.send(
        new PutSecretValueCommand({
          SecretId: secretId,
          ClientRequestToken: versionId,
          SecretString: value,
          VersionStages: ['AWSPENDING'],
        }),
      );
    },
    async makeCurrent(versionId, fromVersionId) {
      await client.send(
        new UpdateSecretVersionStageCommand({
          SecretId: secretId,
          VersionStage: 'AWSCURRENT',
          MoveToVersionId: versionId,
          RemoveFromVersionId: fromVersionId,
        }),
      );
    },
  };
}

/** The origin custom header of a distribution, through the CloudFront API (a whole-config update with ETag). */
export function distributionOriginHeader(client: CloudFrontClient, distributionId: string): OriginHeader {
  const carrying = (name: string) => name.toLowerCase() === ORIGIN_VERIFY_HEADER;
  return {
    async values() {
      const { DistributionConfig } = await client.send(
        new GetDistributionConfigCommand({ Id: distributionId }),
      );
      return (DistributionConfig?.Origins?.Items ?? []).flatMap((origin) =>
        (origin.CustomHeaders?.Items ?? [])
          .filter((h) => carrying(h.HeaderName ?? ''))
          .map((h) => h.HeaderValue ?? ''),
      );
    },
    async set(value) {
      const { DistributionConfig, ETag } = await client.send(
        new GetDistributionConfigCommand({ Id: distributionId }),
      );
      if (!DistributionConfig) throw new Error(`distribution ${distributionId} has no configuration`);
      let found = 0;
      for (const origin of DistributionConfig.Origins?.Items ?? []) {
        for (const header of origin.CustomHeaders?.Items ?? []) {
          if (carrying(header.HeaderName ?? '')) {
            header.HeaderValue = value;
            found += 1;
          }
        }
      }
      if (found === 0)
        throw new Error(`no origin of distribution ${distributionId} carries ${ORIGIN_VERIFY_HEADER}`);
      await client.send(
        new UpdateDistributionCommand({ Id: distributionId, IfMatch: ETag, DistributionConfig }),
      );
    },
  };
}

export interface RotationHandlerDeps {
  readonly clients: Pick<AwsClients, 'secretsManager' | 'cloudfront'>;
  /** The distribution whose origin header carries the secret. */
  readonly distributionId: string;
  /** Tests: how setSecret waits for the collectors' reload interval (rotation.ts). */
  readonly settle?: Pick<RotationDeps, 'sleep' | 'settleMs'>;
}

export type RotationHandler = (event: RotationEvent) => Promise<void>;

export function createRotationHandler(deps: RotationHandlerDeps): RotationHandler {
  return (event) =>
    runAs('origin-secret', async () => {
      logger.info('rotation step', { step: event.Step, version: event.ClientRequestToken });
      await rotateOriginSecret(event.Step, event.ClientRequestToken, {
        secret: secretsManagerVersions(deps.clients.secretsManager, event.SecretId),
        header: distributionOriginHeader(deps.clients.cloudfront, deps.distributionId),
        ...deps.settle,
      });
    });
}

const logger = new Logger({ serviceName: 'origin-secret' });
let handle: RotationHandler | undefined;

export const handler = async (event: RotationEvent): Promise<void> => {
  handle ??= createRotationHandler({
    clients: awsClients(),
    distributionId: distributionIdFromEnvironment(),
  });
  await handle(event);
};
