import { ConfigError } from '../../shared/resources.js';
import { SiteAllowList, SiteListError } from './sites.js';

/**
 * The collector's own settings, carried in its Lambda environment beside the shared resource description
 * (shared/resources.ts). The visitor key is not among them: only where to read it (a Secrets Manager ARN).
 */

const ENV = {
  sites: 'COLLECTOR_SITES',
  visitorKeySecretArn: 'VISITOR_KEY_SECRET_ARN',
} as const;

export interface CollectorSettings {
  readonly sites: SiteAllowList;
  readonly visitorKeySecretArn: string;
}

export function collectorEnvironment(settings: {
  readonly sites: readonly string[];
  readonly visitorKeySecretArn: string;
}): Record<string, string> {
  return { [ENV.sites]: settings.sites.join(','), [ENV.visitorKeySecretArn]: settings.visitorKeySecretArn };
}

export function collectorSettingsFromEnvironment(env: NodeJS.ProcessEnv = process.env): CollectorSettings {
  const visitorKeySecretArn = env[ENV.visitorKeySecretArn];
  if (!visitorKeySecretArn)
    throw new ConfigError(`environment variable ${ENV.visitorKeySecretArn} is not set`);
  try {
    return { sites: SiteAllowList.parse(env[ENV.sites] ?? ''), visitorKeySecretArn };
  } catch (error) {
    if (error instanceof SiteListError) throw new ConfigError(`${ENV.sites}: ${error.message}`);
    throw error;
  }
}
