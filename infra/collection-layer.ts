import { Duration } from 'aws-cdk-lib';
import {
  AllowedMethods,
  CachePolicy,
  Distribution,
  HttpVersion,
  OriginRequestCookieBehavior,
  OriginRequestHeaderBehavior,
  OriginRequestPolicy,
  OriginRequestQueryStringBehavior,
  PriceClass,
  ResponseHeadersPolicy,
  SecurityPolicyProtocol,
  ViewerProtocolPolicy,
} from 'aws-cdk-lib/aws-cloudfront';
import { FunctionUrlOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import type { IStream } from 'aws-cdk-lib/aws-kinesis';
import { FunctionUrlAuthType, type FunctionUrl } from 'aws-cdk-lib/aws-lambda';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { CfnRotationSchedule, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { EVENTS_PATH } from '../shared/collection/collector.js';
import { collectorEnvironment } from '../shared/collection/config.js';
import {
  CLOUDFRONT_VIEWER_HEADERS,
  FORWARDED_VIEWER_HEADERS,
  ORIGIN_VERIFY_HEADER,
  SECURITY_RESPONSE_HEADERS,
} from '../shared/collection/edge.js';
import type { KeepParameters } from '../shared/collection/sites.js';
import { buildTracker } from '../shared/collection/tracker.js';
import { trackerAsset, type TrackerAsset } from '../shared/collection/tracker-asset.js';
import { rotationEnvironment } from '../shared/collection/rotation-config.js';
import { CollectorWebAcl, type RateRule } from './collector-waf.js';
import { pageViewsFunction } from './function.js';

export interface CollectionLayerProps {
  readonly stream: IStream;
  /** The shared resource description (shared/resources.ts) as Lambda environment. */
  readonly environment: Record<string, string>;
  /** Host names (or `*.domain`) the collector takes page views for. */
  readonly sites: readonly string[];
  /** Query parameters each site keeps in its urls (every other one is removed). @default none */
  readonly keepParameters?: KeepParameters;
  /** The per-client limit: a WAF rate-based rule per viewer IP. */
  readonly rateRule: RateRule;
  /**
   * A web ACL (CLOUDFRONT scope) to use instead of the collector's own: one the operator manages, or the one an
   * edge stack in us-east-1 made (a CLOUDFRONT-scope web ACL exists only there). @default a web ACL with the rate
   * rule, in this stack (which must then deploy to us-east-1)
   */
  readonly webAclArn?: string;
  /** Days between rotations of the origin secret. @default 30 */
  readonly originSecretRotationDays?: number;
}

/**
 * Public collection (ARCHITECTURE decisions 10 and 14): CloudFront, with a WAF rate rule per viewer IP, in front
 * of the collector function's URL. Nothing else stands between them: no API Gateway, whose $1 per million requests
 * bought only a global throttle. Only CloudFront reaches the function: CloudFront adds the origin secret (a
 * Secrets Manager secret, rotated by the origin-secret function, which also rewrites the distribution's header) and
 * the collector refuses requests without it. The collector may only put records on the stream and read its two
 * secrets; the query API stays a separate, authenticated API. Design and costs: docs/collector.md.
 */
export class CollectionLayer extends Construct {
  readonly function: NodejsFunction;
  readonly functionUrl: FunctionUrl;
  readonly distribution: Distribution;
  readonly visitorKey: Secret;
  readonly originSecret: Secret;
  readonly rotationFunction: NodejsFunction;
  /** The web ACL in front of the distribution: this layer's own, or the one it was given. */
  readonly webAclArn: string;
  readonly webAcl?: CollectorWebAcl;
  /** The tracker as built at synth time: its versioned path and SRI hash. */
  readonly tracker: TrackerAsset;
  /** https://<distribution>.cloudfront.net */
  readonly url: string;

  constructor(scope: Construct, id: string, props: CollectionLayerProps) {
    super(scope, id);
    this.visitorKey = new Secret(this, 'VisitorKey', {
      description: 'Key of the cookieless visitor hash (daily salt, site, IP, User-Agent) in the collector',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    this.originSecret = new Secret(this, 'OriginSecret', {
      description: `The ${ORIGIN_VERIFY_HEADER} header value CloudFront sends to the collector; rotated`,
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
    });
    this.tracker = trackerAsset(buildTracker().script);
    this.function = pageViewsFunction(this, 'Function', {
      name: 'collect',
      environment: {
        ...props.environment,
        ...collectorEnvironment({
          sites: props.sites,
          ...(props.keepParameters ? { keepParameters: props.keepParameters } : {}),
          visitorKeySecretArn: this.visitorKey.secretArn,
          originSecretArn: this.originSecret.secretArn,
        }),
      },
      memorySize: 256,
      timeout: Duration.seconds(10),
      // Base64, so that no character of the script needs quoting on its way through the bundler's command line.
      define: { TRACKER_SCRIPT_BASE64: JSON.stringify(Buffer.from(this.tracker.script).toString('base64')) },
    });
    props.stream.grant(this.function, 'kinesis:PutRecords');
    // GetSecretValue only: grantRead would add DescribeSecret, which the collector never calls.
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['secretsmanager:GetSecretValue'],
        resources: [this.visitorKey.secretArn, this.originSecret.secretArn],
      }),
    );
    // Public like a beacon endpoint must be; what does not carry CloudFront's origin secret is refused by the code.
    // (Origin access control would have Lambda check CloudFront's signature instead, but for a POST it needs the
    // browser to send the body's SHA-256 in x-amz-content-sha256, which sendBeacon cannot: docs/collector.md.)
    this.functionUrl = this.function.addFunctionUrl({ authType: FunctionUrlAuthType.NONE });

    if (props.webAclArn) this.webAclArn = props.webAclArn;
    else {
      this.webAcl = new CollectorWebAcl(this, 'WebAcl', { rateRule: props.rateRule });
      this.webAclArn = this.webAcl.arn;
    }

    const origin = new FunctionUrlOrigin(this.functionUrl, {
      // The secret's current value at deploy time; the rotation function rewrites it in the distribution.
      customHeaders: { [ORIGIN_VERIFY_HEADER]: this.originSecret.secretValue.unsafeUnwrap() },
    });
    const forwarding = new OriginRequestPolicy(this, 'CollectorForwarding', {
      comment: 'Page-view collector: the headers it reads and the viewer country and address; no cookies',
      headerBehavior: OriginRequestHeaderBehavior.allowList(
        ...FORWARDED_VIEWER_HEADERS,
        ...CLOUDFRONT_VIEWER_HEADERS,
      ),
      cookieBehavior: OriginRequestCookieBehavior.none(),
      queryStringBehavior: OriginRequestQueryStringBehavior.none(),
    });
    const securityHeaders = new ResponseHeadersPolicy(this, 'SecurityHeaders', {
      comment: 'Page-view collector: HSTS and nosniff on every response',
      securityHeadersBehavior: {
        strictTransportSecurity: {
          accessControlMaxAge: Duration.seconds(SECURITY_RESPONSE_HEADERS.hstsMaxAgeSeconds),
          includeSubdomains: SECURITY_RESPONSE_HEADERS.hstsIncludeSubdomains,
          override: true,
        },
        contentTypeOptions: { override: true },
      },
    });
    this.distribution = new Distribution(this, 'Distribution', {
      comment: 'Page-view collector and tracker script',
      priceClass: PriceClass.PRICE_CLASS_100,
      httpVersion: HttpVersion.HTTP2_AND_3,
      minimumProtocolVersion: SecurityPolicyProtocol.TLS_V1_2_2021,
      webAclId: this.webAclArn,
      // The tracker script, cached as the function says: a versioned URL a year (immutable), /pv.js an hour.
      defaultBehavior: {
        origin,
        viewerProtocolPolicy: ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: securityHeaders,
        compress: true,
      },
      additionalBehaviors: {
        [EVENTS_PATH]: {
          origin,
          // A redirect would lose a POST body.
          viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: AllowedMethods.ALLOW_ALL,
          cachePolicy: CachePolicy.CACHING_DISABLED,
          originRequestPolicy: forwarding,
          responseHeadersPolicy: securityHeaders,
        },
      },
    });
    this.url = `https://${this.distribution.distributionDomainName}`;

    this.rotationFunction = pageViewsFunction(this, 'OriginSecretRotation', {
      name: 'origin-secret',
      environment: rotationEnvironment(this.distribution.distributionId),
      memorySize: 256,
      // setSecret waits for the collectors' reload interval twice before CloudFront sends the new value.
      timeout: Duration.minutes(2),
    });
    this.distribution.grant(
      this.rotationFunction,
      'cloudfront:GetDistributionConfig',
      'cloudfront:UpdateDistribution',
    );
    // The grants the rotation's four steps use, and no more: not the GetRandomPassword that CDK's
    // addRotationSchedule adds on every resource (the new value comes from node:crypto).
    this.rotationFunction.addToRolePolicy(
      new PolicyStatement({
        actions: [
          'secretsmanager:DescribeSecret',
          'secretsmanager:GetSecretValue',
          'secretsmanager:PutSecretValue',
          'secretsmanager:UpdateSecretVersionStage',
        ],
        resources: [this.originSecret.secretArn],
      }),
    );
    this.rotationFunction.addPermission('InvokedBySecretsManager', {
      principal: new ServicePrincipal('secretsmanager.amazonaws.com'),
      sourceArn: this.originSecret.secretArn,
    });
    const schedule = new CfnRotationSchedule(this, 'OriginSecretRotationSchedule', {
      secretId: this.originSecret.secretArn,
      rotationLambdaArn: this.rotationFunction.functionArn,
      rotationRules: { scheduleExpression: `rate(${props.originSecretRotationDays ?? 30} days)` },
      // The first rotation follows the schedule, not the deploy that created the distribution.
      rotateImmediatelyOnUpdate: false,
    });
    schedule.node.addDependency(this.rotationFunction.permissionsNode.findChild('InvokedBySecretsManager'));
  }
}
