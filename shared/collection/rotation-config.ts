import { ConfigError } from '../resources.js';

/** The rotation function's settings: the distribution whose origin header carries the secret. */

const DISTRIBUTION_ID = 'COLLECTOR_DISTRIBUTION_ID';

export function rotationEnvironment(distributionId: string): Record<string, string> {
  return { [DISTRIBUTION_ID]: distributionId };
}

export function distributionIdFromEnvironment(env: NodeJS.ProcessEnv = process.env): string {
  const id = env[DISTRIBUTION_ID];
  if (!id) throw new ConfigError(`environment variable ${DISTRIBUTION_ID} is not set`);
  return id;
}
