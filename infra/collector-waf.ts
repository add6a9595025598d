import { Stack, type StackProps } from 'aws-cdk-lib';
import { CfnWebACL } from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { RATE_LIMITED_RETRY_AFTER_SECONDS, RATE_LIMITED_STATUS } from '../shared/collection/edge.js';

/** The per-client limit: at most `limit` requests per viewer IP in any trailing `windowSeconds`. */
export interface RateRule {
  readonly limit: number;
  readonly windowSeconds: number;
}

export interface CollectorWebAclProps {
  readonly rateRule: RateRule;
}

/**
 * The collector's WAF web ACL: one rate-based rule per viewer IP (AWS WAF developer guide, "Rate-based rule
 * statement"), which counts across every edge and every Lambda container, answering 429 with Retry-After beyond the
 * limit, before CloudFront asks the collector. Everything else is allowed. CLOUDFRONT scope: it exists only in
 * us-east-1. Its cost ($5 a month, $1 for the rule, $0.60 per million requests) is in `npm run cost`.
 */
export class CollectorWebAcl extends Construct {
  readonly acl: CfnWebACL;
  readonly arn: string;

  constructor(scope: Construct, id: string, props: CollectorWebAclProps) {
    super(scope, id);
    this.acl = new CfnWebACL(this, 'Resource', {
      scope: 'CLOUDFRONT',
      description: 'Page-view collector: per-IP rate limit',
      defaultAction: { allow: {} },
      visibilityConfig: {
        cloudWatchMetricsEnabled: true,
        metricName: 'PageViewsCollector',
        sampledRequestsEnabled: false,
      },
      rules: [
        {
          name: 'RateLimitPerIp',
          priority: 0,
          statement: {
            rateBasedStatement: {
              aggregateKeyType: 'IP',
              limit: props.rateRule.limit,
              evaluationWindowSec: props.rateRule.windowSeconds,
            },
          },
          action: {
            block: {
              customResponse: {
                responseCode: RATE_LIMITED_STATUS,
                responseHeaders: [{ name: 'retry-after', value: String(RATE_LIMITED_RETRY_AFTER_SECONDS) }],
              },
            },
          },
          visibilityConfig: {
            cloudWatchMetricsEnabled: true,
            metricName: 'PageViewsCollectorRateLimitPerIp',
            // Sampled requests would show viewers' addresses in the console; the collector promises not to keep them.
            sampledRequestsEnabled: false,
          },
        },
      ],
    });
    this.arn = this.acl.attrArn;
  }
}

/**
 * The collector's web ACL in a stack of its own in us-east-1, for a main stack in another region (which then
 * reads its ARN through CDK's cross-region references).
 */
export class CollectorEdgeStack extends Stack {
  readonly webAcl: CollectorWebAcl;

  constructor(scope: Construct, id: string, props: StackProps & CollectorWebAclProps) {
    super(scope, id, props);
    this.webAcl = new CollectorWebAcl(this, 'CollectorWebAcl', { rateRule: props.rateRule });
  }
}
