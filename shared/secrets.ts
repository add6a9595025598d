import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';

/** Secrets Manager's staging labels (Secrets Manager user guide, "Rotation by Lambda function"). */
export type SecretStage = 'AWSCURRENT' | 'AWSPENDING' | 'AWSPREVIOUS';

/** The string value of one stage of a secret, or undefined when no version carries that label. */
export async function secretStageValue(
  client: SecretsManagerClient,
  secretId: string,
  stage: SecretStage,
): Promise<string | undefined> {
  try {
    const { SecretString } = await client.send(
      new GetSecretValueCommand({ SecretId: secretId, VersionStage: stage }),
    );
    return SecretString;
  } catch (error) {
    // A secret that was never rotated has no AWSPENDING or AWSPREVIOUS version.
    if (error instanceof ResourceNotFoundException && stage !== 'AWSCURRENT') return undefined;
    throw error;
  }
}

/** The values of several stages, those that exist, in the order asked. */
export async function secretStageValues(
  client: SecretsManagerClient,
  secretId: string,
  stages: readonly SecretStage[],
): Promise<string[]> {
  const values = await Promise.all(stages.map((stage) => secretStageValue(client, secretId, stage)));
  return values.filter((value): value is string => value !== undefined);
}
