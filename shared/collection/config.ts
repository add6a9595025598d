import { ConfigError } from '../resources.js';
import { SiteAllowList, SiteListError, type KeepParameters } from './sites.js';

/**
 * The collector's own settings, carried in its Lambda environment beside the shared resource description
 * (shared/resources.ts). No secret is among them: only where to read them (Secrets Manager ARNs).
 */

const ENV = {
  sites: 'COLLECTOR_SITES',
  keepParameters: 'COLLECTOR_KEEP_PARAMS',
  visitorKeySecretArn: 'VISITOR_KEY_SECRET_ARN',
  originSecretArn: 'ORIGIN_SECRET_ARN',
} as const;

export interface CollectorSettings {
  readonly sites: SiteAllowList;
  readonly visitorKeySecretArn: string;
  /** The secret whose versions CloudFront sends in the origin-verify header. */
  readonly originSecretArn: string;
}

export function collectorEnvironment(settings: {
  readonly sites: readonly string[];
  readonly keepParameters?: KeepParameters;
  readonly visitorKeySecretArn: string;
  readonly originSecretArn: string;
}): Record<string, string> {
  return {
    [ENV.sites]: settings.sites.join(','),
    ...(settings.keepParameters && Object.keys(settings.keepParameters).length > 0
      ? { [ENV.keepParameters]: JSON.stringify(settings.keepParameters) }
      : {}),
    [ENV.visitorKeySecretArn]: settings.visitorKeySecretArn,
    [ENV.originSecretArn]: settings.originSecretArn,
  };
}

export function collectorSettingsFromEnvironment(env: NodeJS.ProcessEnv = process.env): CollectorSettings {
  const required = (name: string) => {
    const value = env[name];
    if (!value) throw new ConfigError(`environment variable ${name} is not set`);
    return value;
  };
  const visitorKeySecretArn = required(ENV.visitorKeySecretArn);
  const originSecretArn = required(ENV.originSecretArn);
  let keep: KeepParameters = {};
  try {
    keep = JSON.parse(env[ENV.keepParameters] ?? '{}') as KeepParameters;
  } catch {
    throw new ConfigError(`${ENV.keepParameters}: not JSON`);
  }
  try {
    return { sites: SiteAllowList.parse(env[ENV.sites] ?? '', keep), visitorKeySecretArn, originSecretArn };
  } catch (error) {
    if (error instanceof SiteListError) throw new ConfigError(`${ENV.sites}: ${error.message}`);
    throw error;
  }
}
