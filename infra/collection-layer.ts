import { Duration, Fn, RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogField, AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import type { CfnStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpApi, HttpMethod, HttpStage, LogGroupLogDestination } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import {
  AllowedMethods,
  CachePolicy,
  Distribution,
  HttpVersion,
  OriginProtocolPolicy,
  OriginRequestCookieBehavior,
  OriginRequestHeaderBehavior,
  OriginRequestPolicy,
  OriginRequestQueryStringBehavior,
  OriginSslPolicy,
  PriceClass,
  SecurityPolicyProtocol,
  ViewerProtocolPolicy,
} from 'aws-cdk-lib/aws-cloudfront';
import { HttpOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import type { IStream } from 'aws-cdk-lib/aws-kinesis';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { EVENTS_PATH, TRACKER_PATH } from '../lambdas/collect/collector.js';
import { collectorEnvironment } from '../lambdas/collect/config.js';
import { buildTracker } from '../lambdas/collect/tracker.js';
import { pageViewsFunction } from './function.js';

export interface CollectionLayerProps {
  readonly stream: IStream;
  /** The shared resource description (shared/resources.ts) as Lambda environment. */
  readonly environment: Record<string, string>;
  /** Host names (or `*.domain`) the collector takes page views for. */
  readonly sites: readonly string[];
  /** Throttling of `POST /v1/events`. */
  readonly rateLimit: number;
  readonly burstLimit: number;
  /**
   * Throttling of the stage's other routes (the tracker script, which CloudFront caches, and CORS preflights,
   * which browsers cache). @default 50 requests/s, burst 100
   */
  readonly otherRoutesRateLimit?: number;
  readonly otherRoutesBurstLimit?: number;
  /** A WAF web ACL (CLOUDFRONT scope) for the distribution. @default none */
  readonly webAclArn?: string;
}

/** The headers the collector reads. No cookie and no query string reaches it. */
const FORWARDED_HEADERS = [
  'Origin',
  'User-Agent',
  'Content-Type',
  'Access-Control-Request-Method',
  'Access-Control-Request-Headers',
  'CloudFront-Viewer-Country',
  'CloudFront-Viewer-Address',
] as const;

/**
 * Public collection (ARCHITECTURE decision 10): CloudFront → an HTTP API of its own, without authorization →
 * the collector function, which may only put records on the stream and read the visitor key. The query API
 * stays a separate, authenticated API. CloudFront adds the viewer's country and address, serves /pv.js from its
 * cache, and is where a WAF can sit (an HTTP API cannot take one).
 */
export class CollectionLayer extends Construct {
  readonly function: NodejsFunction;
  readonly api: HttpApi;
  readonly stage: HttpStage;
  readonly distribution: Distribution;
  readonly visitorKey: Secret;
  /** https://<distribution>.cloudfront.net */
  readonly url: string;

  constructor(scope: Construct, id: string, props: CollectionLayerProps) {
    super(scope, id);
    this.visitorKey = new Secret(this, 'VisitorKey', {
      description: 'Key of the cookieless visitor hash (daily salt, site, IP, User-Agent) in the collector',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    const tracker = buildTracker();
    this.function = pageViewsFunction(this, 'Function', {
      name: 'collect',
      environment: {
        ...props.environment,
        ...collectorEnvironment({ sites: props.sites, visitorKeySecretArn: this.visitorKey.secretArn }),
      },
      memorySize: 256,
      timeout: Duration.seconds(10),
      // Base64, so that no character of the script needs quoting on its way through the bundler's command line.
      define: { TRACKER_SCRIPT_BASE64: JSON.stringify(Buffer.from(tracker.script).toString('base64')) },
    });
    props.stream.grant(this.function, 'kinesis:PutRecords');
    // GetSecretValue only: grantRead would add DescribeSecret, which the collector never calls.
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['secretsmanager:GetSecretValue'],
        resources: [this.visitorKey.secretArn],
      }),
    );

    this.api = new HttpApi(this, 'Api', {
      description: 'Page-view collector (public): POST /v1/events and the tracker script',
      createDefaultStage: false,
    });
    const integration = new HttpLambdaIntegration('Integration', this.function);
    this.api.addRoutes({ path: EVENTS_PATH, methods: [HttpMethod.POST, HttpMethod.OPTIONS], integration });
    this.api.addRoutes({ path: TRACKER_PATH, methods: [HttpMethod.GET, HttpMethod.HEAD], integration });

    const accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = new HttpStage(this, 'Stage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: {
        rateLimit: props.otherRoutesRateLimit ?? 50,
        burstLimit: props.otherRoutesBurstLimit ?? 100,
      },
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogs),
        // Privacy: no source IP or User-Agent in the logs, unlike the default (CLF) format.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: AccessLogField.contextRequestId(),
            time: AccessLogField.contextRequestTime(),
            route: AccessLogField.contextRouteKey(),
            status: AccessLogField.contextStatus(),
            length: AccessLogField.contextResponseLength(),
            latency: AccessLogField.contextResponseLatency(),
            integrationLatency: AccessLogField.contextIntegrationLatency(),
          }),
        ),
      },
    });
    // Route throttling beyond the stage default: the events route carries the page views.
    (this.stage.node.defaultChild as CfnStage).routeSettings = {
      [`POST ${EVENTS_PATH}`]: {
        ThrottlingRateLimit: props.rateLimit,
        ThrottlingBurstLimit: props.burstLimit,
      },
    };

    const origin = new HttpOrigin(Fn.select(2, Fn.split('/', this.api.apiEndpoint)), {
      protocolPolicy: OriginProtocolPolicy.HTTPS_ONLY,
      originSslProtocols: [OriginSslPolicy.TLS_V1_2],
    });
    const forwarding = new OriginRequestPolicy(this, 'CollectorForwarding', {
      comment: 'Page-view collector: the headers it reads and the viewer country and address; no cookies',
      headerBehavior: OriginRequestHeaderBehavior.allowList(...FORWARDED_HEADERS),
      cookieBehavior: OriginRequestCookieBehavior.none(),
      queryStringBehavior: OriginRequestQueryStringBehavior.none(),
    });
    this.distribution = new Distribution(this, 'Distribution', {
      comment: 'Page-view collector and tracker script',
      priceClass: PriceClass.PRICE_CLASS_100,
      httpVersion: HttpVersion.HTTP2_AND_3,
      minimumProtocolVersion: SecurityPolicyProtocol.TLS_V1_2_2021,
      ...(props.webAclArn ? { webAclId: props.webAclArn } : {}),
      // The tracker script (and anything else: the function answers 404), cached as the function says.
      defaultBehavior: {
        origin,
        viewerProtocolPolicy: ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: CachePolicy.CACHING_OPTIMIZED,
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
        },
      },
    });
    this.url = `https://${this.distribution.distributionDomainName}`;
  }
}
